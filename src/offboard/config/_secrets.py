"""Secret references (``env:NAME``, ``file:PATH``) and the ``Secret`` value that hides itself."""

from __future__ import annotations

import hmac
import os
import threading
from pathlib import Path
from typing import Any

from pydantic_core import core_schema

from ..errors import SecretError

__all__ = ["Secret", "resolve_reference", "known_secret_values"]

_registry: set[str] = set()
_lock = threading.Lock()


def known_secret_values() -> frozenset[str]:
    """Every secret value resolved in this process, for the log redactor."""
    with _lock:
        return frozenset(_registry)


class Secret:
    """A secret value. ``str()`` and ``repr()`` never show it; ``reveal()`` does."""

    __slots__ = ("_value", "source")
    _value: str
    source: str

    def __init__(self, value: str, source: str = "inline"):
        if not isinstance(value, str) or not value:
            raise SecretError(f"secret from {source} is empty")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "source", source)
        with _lock:  # every secret, however short, is redacted from logs
            _registry.add(value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(other._value.encode(), self._value.encode())

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickle a secret by accident
        raise TypeError("Secret values cannot be pickled")

    @classmethod
    def __get_pydantic_core_schema__(cls, source_type: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate, serialization=core_schema.plain_serializer_function_ser_schema(lambda s: s.source)
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "description": "a reference: env:NAME or file:PATH"}


def _validate(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise ValueError("a secret must be a reference string such as env:NAME or file:PATH")
    try:
        return resolve_reference(value)
    except SecretError as exc:  # pydantic adds the key path to ValueErrors
        raise ValueError(str(exc)) from None


def resolve_reference(ref: str) -> Secret:
    """Turn ``env:NAME`` or ``file:PATH`` into a Secret; refuse anything else."""
    scheme, sep, rest = ref.partition(":")
    if sep and scheme == "env" and rest:
        value = os.environ.get(rest)
        if not value:
            raise SecretError(f"environment variable {rest} is not set (referenced as env:{rest})")
        return Secret(value, source=ref)
    if sep and scheme == "file" and rest:
        path = Path(rest).expanduser()
        try:
            value = _without_final_newline(path.read_text())
        except OSError as exc:
            raise SecretError(f"cannot read secret file {path}: {exc.strerror}") from None
        if not value:
            raise SecretError(f"secret file {path} is empty")
        return Secret(value, source=ref)
    # Do not echo the value: it may be the secret itself.
    raise SecretError(
        "secrets must not be written inline; store the value in an environment variable "
        "or a file and write env:NAME or file:/path/to/secret instead"
    )


def _without_final_newline(text: str) -> str:
    """A secret file's value: its text less one final newline (editors add one); nothing else is trimmed."""
    return text.removesuffix("\n").removesuffix("\r")
