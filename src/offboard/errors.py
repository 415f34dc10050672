"""Every error offboard raises, in one tree.

::

    OffboardError
     ├── ConfigError            a config, policy or secret reference is wrong (exit 2)
     │    ├── PolicyError
     │    └── SecretError
     ├── UnknownPerson          nobody matches the reference given
     ├── PluginError            a plugin is broken or registers a duplicate name
     ├── ApprovalRequired       a sweep was approved without naming the approver
     ├── TaskError              a checklist task named does not exist, or a close left out what it needs
     ├── NotifyError            a notice could not be delivered
     ├── WebhookRejected        an HR delivery refused: HTTP ``status``, short ``code``, ``message``
     ├── AuditError             the audit log cannot be opened or written safely
     ├── ReportError            no audit report: ``code`` 1 the log does not verify, 2 bad input
     ├── EntryError             an audit entry is not canonical (also a ValueError)
     ├── NoteError              a note, key, checkpoint or proof does not verify (also a ValueError)
     ├── StoreError             the state database failed or refused a write
     │    └── CaseConflict      another case for the person is already running
     └── ConnectorError         raised by connectors at their boundary
          ├── AuthError         credentials rejected: stop this connector, do not retry
          │    └── PermissionDenied   authenticated, but a named permission is missing
          ├── NotFound          the account or object is not there
          ├── RateLimited       slow down; ``retry_after`` seconds when the system said
          ├── TransientError    worth retrying (5xx, timeouts, resets)
          └── PermanentError    will fail again the same way (4xx other than the above)

Connectors translate their SDK's exceptions into this tree; the engine decides what
to retry (``RateLimited`` and ``TransientError`` only) and records everything else.
"""

from __future__ import annotations

__all__ = [
    "OffboardError",
    "ConfigError",
    "PolicyError",
    "SecretError",
    "UnknownPerson",
    "PluginError",
    "StoreError",
    "CaseConflict",
    "ConnectorError",
    "AuthError",
    "PermissionDenied",
    "NotFound",
    "RateLimited",
    "TransientError",
    "PermanentError",
    "ApprovalRequired",
    "TaskError",
    "NotifyError",
    "WebhookRejected",
    "AuditError",
    "ReportError",
    "EntryError",
    "NoteError",
]


class OffboardError(Exception):
    """Base class of every error offboard raises on purpose."""


class ConfigError(OffboardError):
    """A configuration problem; ``where`` names the file and key."""

    def __init__(self, message: str, *, where: str | None = None):
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class PolicyError(ConfigError):
    """A policy file is malformed or asks for something impossible."""


class SecretError(ConfigError):
    """A secret reference cannot be resolved, or a secret was written inline."""


class UnknownPerson(OffboardError):
    """No person and no account match the reference given; ``suggestions`` are the nearest known identifiers."""

    def __init__(self, message: str, *, suggestions: tuple[str, ...] | list[str] = ()):
        self.suggestions = tuple(suggestions)
        if self.suggestions:
            message += ". Did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)


class PluginError(OffboardError):
    """A plugin failed to load, or registered a duplicate connector name."""


class ApprovalRequired(OffboardError):
    """``approve`` was asked for without naming the approver."""


class TaskError(OffboardError):
    """A task command named something that does not exist, or left out what it needs."""


class NotifyError(OffboardError):
    """A notice could not be delivered."""


class WebhookRejected(OffboardError):
    """A delivery refused with an HTTP status, a short code and a clear message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class AuditError(OffboardError):
    """The audit log cannot be opened or written safely."""


class ReportError(OffboardError):
    """No report: ``code`` 1 when the log does not verify, 2 for bad input or nothing to report on."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class EntryError(OffboardError, ValueError):
    """An audit entry is not canonical or breaks the schema."""


class NoteError(OffboardError, ValueError):
    """A note, key, checkpoint or proof is malformed or does not verify."""


class StoreError(OffboardError):
    """The state database failed (unreachable, or a query went wrong) or refused a write."""


class CaseConflict(StoreError):
    """A case cannot be stored: another case for the same person is already running."""


class ConnectorError(OffboardError):
    """Raised by a connector; ``system`` is filled in by the engine when missing."""

    retryable = False

    def __init__(self, message: str = "", *, system: str | None = None, status: int | None = None):
        self.system = system
        self.status = status
        super().__init__(message or self.__class__.__name__)


class AuthError(ConnectorError):
    """Credentials were rejected or have expired; the connector is stopped."""


class PermissionDenied(AuthError):
    """Authenticated, but the service identity lacks ``permissions``."""

    def __init__(self, message: str = "", *, permissions: tuple[str, ...] = (), **kw):
        self.permissions = tuple(permissions)
        if permissions and not message:
            message = "missing permission: " + ", ".join(permissions)
        super().__init__(message, **kw)


class NotFound(ConnectorError):
    """The target object does not exist."""


class RateLimited(ConnectorError):
    """The system asked us to slow down; wait ``retry_after`` seconds if given."""

    retryable = True

    def __init__(self, message: str = "", *, retry_after: float | None = None, lane: str | None = None, **kw):
        self.retry_after = retry_after
        self.lane = lane  # the connector's rate-limit lane, when the limit is per method
        super().__init__(message or "rate limited", **kw)


class TransientError(ConnectorError):
    """A failure that may succeed on retry (5xx, timeout, connection reset).

    ``partial``: a batch some of whose items were done this time, and only the rest will be sent
    again; the engine backs off but does not count it as a failure of the request."""

    retryable = True

    def __init__(self, message: str = "", *, partial: bool = False, **kw):
        self.partial = partial
        super().__init__(message, **kw)


class PermanentError(ConnectorError):
    """A failure that will repeat if retried."""
