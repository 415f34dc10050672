"""``offboard connectors probe NAME``: does deactivating an account in this system really deactivate it?

Some applications answer ``active: false`` with 200 and change nothing. Before a system is trusted
with a real leaver, the probe takes a test account (the one named, or one it creates when the
connector can: ``create_probe_account``), deactivates it through the connector, reads it back
(``verify``, then the connector's ``probe_checks``: another read path, an app-specific check), and
puts things back (the named account is re-enabled through ``undo``; a created one is deleted unless
kept). The verdict: ``effective``, ``ineffective`` (the write was accepted, the reads say active),
or ``error`` (the probe itself could not run: it says where). Every step is recorded in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ConnectorError
from ..models import Account, Action, ActionKind, Person, Receipt

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["ProbeResult", "probe"]

EFFECTIVE, INEFFECTIVE, ERROR = "effective", "ineffective", "error"


@dataclass
class ProbeResult:
    """What the probe did and found; ``ok`` only when deactivation was seen to take effect."""

    system: str
    account: str = ""
    created: bool = False
    verdict: str = ERROR
    detail: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)  # {check, ok, detail}
    cleanup: str = ""
    conformance: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict == EFFECTIVE and not any(c["status"] == "error" for c in self.conformance)

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "account": self.account,
            "created": self.created,
            "verdict": self.verdict,
            "detail": self.detail,
            "checks": self.checks,
            "cleanup": self.cleanup,
            "conformance": self.conformance,
        }


def probe(
    engine: Engine, instance: str, *, user: str | None = None, keep: bool = False, conformance: bool = False
) -> ProbeResult:
    """Probe ``instance``; ``user`` names an existing test account (else one is created). See the module."""
    if instance not in engine.config.connectors:
        known = ", ".join(sorted(engine.config.connectors)) or "none configured"
        raise ConfigError(f"no connector named {instance!r} (known: {known})")
    connector = engine.connector(instance)
    if ActionKind.DISABLE_ACCOUNT not in connector.capabilities():
        raise ConfigError(f"{instance} ({connector.name}) cannot disable accounts: nothing to probe")
    result = ProbeResult(instance)
    user = user or getattr(connector.settings, "probe_user", None)
    try:
        account = _account(engine, instance, connector, user, result)
    except ConnectorError as exc:
        result.detail = f"could not get a test account: {type(exc).__name__}: {exc}"
        if result.created:
            result.detail += "; name an existing test account with --user instead"
        _record(engine, result)
        return result
    if account is None:
        _record(engine, result)
        return result
    result.account = account.name
    action = Action(ActionKind.DISABLE_ACCOUNT, account, {"case": "probe"})
    receipt: Receipt | None = None
    try:
        receipt, _ = engine.call(instance, connector.apply, action)
        verification, _ = engine.call(instance, connector.verify, action, receipt)
        result.checks.append({"check": "read back", "ok": verification.ok, "detail": verification.detail})
        extra = getattr(connector, "probe_checks", None)
        if extra is not None:
            for name, ok, detail in engine.call(instance, extra, account)[0]:
                result.checks.append({"check": name, "ok": ok, "detail": detail})
    except ConnectorError as exc:
        result.detail = f"deactivating {account.name} failed: {type(exc).__name__}: {exc}"
    else:
        failed = [c for c in result.checks if not c["ok"]]
        if failed:
            result.verdict = INEFFECTIVE
            result.detail = (
                f"{instance} accepted the deactivation of {account.name} but the account is still active "
                f"({'; '.join(c['detail'] for c in failed)}): do not trust disable_account here; "
                "disable the person in the identity provider or remove the account instead"
            )
        else:
            result.verdict = EFFECTIVE
            result.detail = f"{account.name} read back as deactivated"
    result.cleanup = _clean_up(engine, instance, connector, account, receipt, result.created, keep)
    if conformance:
        try:
            found = engine.call(instance, connector.conformance)[0]  # type: ignore[attr-defined]
        except AttributeError:
            raise ConfigError(f"{instance} ({connector.name}) has no conformance check (SCIM connectors do)") from None
        result.conformance = [{"check": t, "status": s, "reason": r} for t, s, r in found]
    _record(engine, result)
    return result


def _account(engine: Engine, instance: str, connector: Any, user: str | None, result: ProbeResult) -> Account | None:
    if user:
        person = Person(id=user, email=user if "@" in user else None)
        found = engine.call(instance, connector.discover, person)[0]
        if len(found) != 1:
            result.detail = f"test account {user!r}: {len(found)} account(s) match in {instance}; name exactly one"
            return None
        account = found[0]
        if not account.active:
            result.detail = f"test account {account.name} is already inactive: enable it, then probe again"
            return None
        return account
    create = getattr(connector, "create_probe_account", None)
    if create is None:
        raise ConfigError(
            f"{instance} ({connector.name}) cannot create a test account: name one with --user (or settings.probe_user)"
        )
    result.created = True
    account = engine.call(instance, create)[0]
    return account


def _clean_up(
    engine: Engine, instance: str, connector: Any, account: Account, receipt: Receipt | None, created: bool, keep: bool
) -> str:
    """Put things back: delete a created test account (unless ``keep``), re-enable a named one."""
    try:
        if created and not keep:
            engine.call(instance, connector.remove_probe_account, account)
            return f"deleted test account {account.name}"
        if created:
            return f"kept test account {account.name}"
        if receipt is not None and receipt.changed:
            engine.call(instance, connector.undo, receipt)
            return f"re-enabled {account.name}"
        return f"left {account.name} as it was"
    except ConnectorError as exc:
        return f"could not clean up {account.name}: {type(exc).__name__}: {exc}"


def _record(engine: Engine, result: ProbeResult) -> None:
    engine.record("probe", None, result.to_dict())
    engine.record.seal()
