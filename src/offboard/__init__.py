"""offboard: disable every account a departing person holds, fast, everywhere, provably."""

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and editors; at run time names load on first use
    from .cases import CaseClosed
    from .config._secrets import Secret
    from .connector import Connector, ConnectorSettings, ManualTask
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
    from .hr import HREvent
    from .models import (
        Account,
        AccountPage,
        Action,
        ActionKind,
        ActionStatus,
        CaseStatus,
        CheckResult,
        Leftover,
        Person,
        Receipt,
        Verification,
    )
    from .notifiers import Notice, Notifier
    from .people import PeopleSource
    from .signing import Signer

_HOMES = {
    "Secret": ".config._secrets",
    "Connector": ".connector",
    "ConnectorSettings": ".connector",
    "ManualTask": ".connector",
    "hookimpl": ".hookspecs",
    "CaseClosed": ".cases",
    "HREvent": ".hr",
    "Notice": ".notifiers",
    "Notifier": ".notifiers",
    "PeopleSource": ".people",
    "Signer": ".signing",
    **dict.fromkeys(
        (
            "AuthError ConfigError ConnectorError NotFound OffboardError PermanentError PermissionDenied PolicyError "
            "RateLimited SecretError TransientError UnknownPerson"
        ).split(),
        ".errors",
    ),
    **dict.fromkeys(
        (
            "Account AccountPage Action ActionKind ActionStatus CaseStatus CheckResult Leftover Person Receipt "
            "Verification"
        ).split(),
        ".models",
    ),
}


def __getattr__(name: str):
    """Import public names on first use, so `offboard --help` does not pay for pydantic."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'offboard' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "Account",
    "AccountPage",
    "Action",
    "ActionKind",
    "ActionStatus",
    "AuthError",
    "CaseClosed",
    "CaseStatus",
    "CheckResult",
    "ConfigError",
    "Connector",
    "ConnectorError",
    "ConnectorSettings",
    "HREvent",
    "Leftover",
    "ManualTask",
    "NotFound",
    "Notice",
    "Notifier",
    "OffboardError",
    "PeopleSource",
    "PermanentError",
    "PermissionDenied",
    "Person",
    "PolicyError",
    "RateLimited",
    "Receipt",
    "Secret",
    "SecretError",
    "Signer",
    "TransientError",
    "UnknownPerson",
    "Verification",
    "hookimpl",
]
