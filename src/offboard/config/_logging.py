"""structlog set-up: JSON when stderr is not a terminal, and secrets redacted everywhere."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

from ._secrets import Secret, known_secret_values

__all__ = ["configure_logging", "redact", "get_logger"]


class _LazyLogger:
    """A structlog logger that imports structlog on first use (`offboard --help` stays fast)."""

    def __init__(self, name: str):
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, attr)


def get_logger(name: str) -> Any:
    """A logger for module level: structlog is imported when it first logs."""
    return _LazyLogger(name)


_SECRET_KEYS = re.compile(r"(pass(word)?|secret|token|authorization|api[_-]?key|private[_-]?key|credential)", re.I)
REDACTED = "[redacted]"


def redact(value: Any, key: str = "") -> Any:
    """Replace secret values (and values under secret-sounding keys) with a marker."""
    if isinstance(value, Secret):
        return REDACTED
    if key and _SECRET_KEYS.search(key) and isinstance(value, (str, bytes)):
        return REDACTED
    if isinstance(value, str):
        for secret in known_secret_values():
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def _redact_processor(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    return {k: redact(v, k) for k, v in event_dict.items()}


class _RedactingFilter(logging.Filter):
    """Applies the same redaction to stdlib logging (SDKs log through it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = redact(message), ()
        return True


def configure_logging(verbosity: int = 0, json: bool | None = None) -> None:
    """Configure structlog and stdlib logging to stderr."""
    import structlog

    level = logging.WARNING - 10 * verbosity
    if json is None:
        json = not sys.stderr.isatty()
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(f, _RedactingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(_RedactingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
