"""structlog set-up: JSON when stderr is not a terminal, and secrets redacted everywhere."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
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


def _tell_the_person(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """When logs go to the file, offboard's own warnings and errors also reach the person: one plain line on
    stderr (``warning: what happened (error: why)``). Libraries' log lines stay in the file."""
    level = str(event_dict.get("level", ""))
    if level in ("warning", "error", "critical"):
        why = event_dict.get("error")
        line = f"{'error' if level != 'warning' else 'warning'}: {event_dict.get('event', '')}"
        sys.stderr.write(line + (f" ({why})" if why else "") + "\n")
    return event_dict


class LogFile:
    """``DATA_DIR/offboard.log``, opened on the first write, and only if the data folder exists (a read-only
    command never creates it); otherwise the lines are dropped. File-like enough for logging and structlog."""

    def __init__(self, directory: Any = None):
        self._directory = directory
        self._file: Any = None
        self._lock = threading.Lock()
        self.path: Any = None

    def write(self, text: str) -> int:
        with self._lock:
            if self._file is None:
                from ._paths import data_dir

                directory = self._directory or data_dir(create=False)
                if not directory.is_dir():
                    return len(text)
                self.path = directory / "offboard.log"
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self._file = os.fdopen(fd, "a", encoding="utf-8")
            self._file.write(text)
            self._file.flush()
            return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


_log_file: LogFile | None = None


def configure_logging(verbosity: int = 0, json: bool | None = None, stderr: bool | None = None) -> None:
    """Configure structlog and stdlib logging (SDKs log through it).

    Library and engine log lines go to ``DATA_DIR/offboard.log`` (as JSON lines) so they never mix with
    what a command prints for people; to stderr instead with ``-v`` (``verbosity`` > 0) or ``stderr=True``
    (the long-running ``serve`` and ``worker``). On stderr they are JSON when it is not a terminal.
    """
    import structlog

    global _log_file
    if stderr is None:
        stderr = verbosity > 0
    if stderr:
        level = logging.WARNING - 10 * verbosity
        stream: Any = sys.stderr
        if json is None:
            json = not sys.stderr.isatty()
    else:
        level = logging.INFO
        if _log_file is None:
            _log_file = LogFile()
        stream = _log_file
        json = True
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            *([] if stderr else [_tell_the_person]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    root.setLevel(level)
    for old in [h for h in root.handlers if getattr(h, "_offboard", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream)
    handler._offboard = True  # type: ignore[attr-defined]
    handler.addFilter(_RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
