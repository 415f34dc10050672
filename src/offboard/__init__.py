"""offboard: disable every account a departing person holds, fast, everywhere, provably."""

from .connector import Connector, ConnectorSettings
from .errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    NotFound,
    OffboardError,
    PermanentError,
    PermissionDenied,
    PolicyError,
    RateLimited,
    SecretError,
    TransientError,
    UnknownPerson,
)
from .hookspecs import hookimpl
from .models import (
    Account,
    AccountPage,
    Action,
    ActionKind,
    ActionStatus,
    Case,
    CaseStatus,
    CheckResult,
    Person,
    Receipt,
    Verification,
)
from ._secrets import Secret

__version__ = "0.1.0"

__all__ = [
    "Account",
    "AccountPage",
    "Action",
    "ActionKind",
    "ActionStatus",
    "AuthError",
    "Case",
    "CaseStatus",
    "CheckResult",
    "ConfigError",
    "Connector",
    "ConnectorError",
    "ConnectorSettings",
    "NotFound",
    "OffboardError",
    "PermanentError",
    "PermissionDenied",
    "Person",
    "PolicyError",
    "RateLimited",
    "Receipt",
    "Secret",
    "SecretError",
    "TransientError",
    "UnknownPerson",
    "Verification",
    "hookimpl",
]
