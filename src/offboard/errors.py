"""Every error offboard raises, in one tree.

::

    OffboardError
     ├── ConfigError            a config, policy or secret reference is wrong (exit 2)
     │    ├── PolicyError
     │    └── SecretError
     ├── UnknownPerson          nobody matches the reference given
     ├── PluginError            a plugin is broken or registers a duplicate name
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
    """No person and no account match the reference given."""


class PluginError(OffboardError):
    """A plugin failed to load, or registered a duplicate connector name."""


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
    """A failure that may succeed on retry (5xx, timeout, connection reset)."""

    retryable = True


class PermanentError(ConnectorError):
    """A failure that will repeat if retried."""
