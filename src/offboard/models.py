"""The nouns of offboarding: people, accounts, actions, receipts, verifications, cases.

All are frozen dataclasses; ``to_dict``/``from_dict`` give the JSON shape stored in
the database and written to the audit log.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "ActionKind",
    "Person",
    "Equipment",
    "Account",
    "Action",
    "Receipt",
    "Verification",
    "CaseStatus",
    "ActionStatus",
    "FollowUpStatus",
    "HREventStatus",
    "TaskStatus",
    "SyncStatus",
    "CheckResult",
    "AccountPage",
    "Leftover",
]


class ActionKind(str, enum.Enum):
    """What can be done to an account, in the order a policy usually runs them."""

    # handover steps some systems refuse once the account is disabled (their ``ordering`` says so)
    HANDOVER_MAILBOX = "handover_mailbox"  # the manager gets access to the mailbox (delegate)
    SET_AUTO_REPLY = "set_auto_reply"  # an out-of-office reply naming who takes over
    REMOVE_FORWARDING = "remove_forwarding"  # auto-forwarding, forwarding filters and inbox rules
    REVOKE_SESSIONS = "revoke_sessions"
    REVOKE_TOKENS = "revoke_tokens"
    REVOKE_APP_GRANTS = "revoke_app_grants"  # OAuth consents / app role assignments to third-party apps
    DISABLE_ACCOUNT = "disable_account"
    WIPE_DEVICES = "wipe_devices"  # company data on managed devices wiped or retired
    REMOVE_MEMBERSHIPS = "remove_memberships"
    REMOVE_LICENSES = "remove_licenses"
    TRANSFER_OWNERSHIP = "transfer_ownership"
    DELETE_ACCOUNT = "delete_account"

    def __str__(self) -> str:
        return self.value


class CaseStatus(str, enum.Enum):
    """Where a case stands; every status but ``running`` and ``closing`` is in ``FINAL``."""

    RUNNING = "running"
    CLOSING = "closing"  # every action is final; one process won the claim and is writing the outcome
    HALTED = "halted"  # a guard stopped it before any action; needs approval
    COMPLETE = "complete"  # every planned action verified, and no blocking checklist task open
    AWAITING_TASKS = "awaiting_tasks"  # every planned action verified; blocking checklist tasks still open
    INCOMPLETE = "incomplete"  # at least one action failed or could not be verified
    CANCELLED = "cancelled"

    FINAL: ClassVar[frozenset[CaseStatus]]

    def __str__(self) -> str:
        return self.value


CaseStatus.FINAL = frozenset(set(CaseStatus) - {CaseStatus.RUNNING, CaseStatus.CLOSING})


class ActionStatus(str, enum.Enum):
    """Where one action stands; ``FINAL`` ones are never run again (``waiting`` finishes by itself)."""

    PENDING = "pending"
    APPLYING = "applying"  # asked of the system; the answer is not recorded yet (read back before retrying)
    APPLIED = "applied"  # the system accepted the write; not yet read back
    VERIFIED = "verified"  # read back and found in the desired state
    FAILED = "failed"
    UNVERIFIED = "unverified"  # applied, but the read-back disagreed
    WAITING = "waiting"  # accepted by the system, finishing asynchronously
    SKIPPED = "skipped"
    UNDONE = "undone"

    FINAL: ClassVar[frozenset[ActionStatus]]

    def __str__(self) -> str:
        return self.value


ActionStatus.FINAL = frozenset(
    {ActionStatus.VERIFIED, ActionStatus.FAILED, ActionStatus.UNVERIFIED, ActionStatus.SKIPPED, ActionStatus.UNDONE}
)


class FollowUpStatus(str, enum.Enum):
    """A later step of a case (a staged deletion): scheduled until its own case opens, or cancelled by an undo."""

    SCHEDULED = "scheduled"
    DONE = "done"
    CANCELLED = "cancelled"

    FINAL: ClassVar[frozenset[FollowUpStatus]]

    def __str__(self) -> str:
        return self.value


FollowUpStatus.FINAL = frozenset({FollowUpStatus.DONE, FollowUpStatus.CANCELLED})


class HREventStatus(str, enum.Enum):
    """What became of a received HR event; ``accepted``, ``scheduled`` and ``opened`` are still in flight."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"  # a termination waiting for its effective time
    OPENED = "opened"  # its case is open
    DONE = "done"
    FAILED = "failed"
    UNRESOLVED = "unresolved"  # it names nobody offboard knows
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"
    TOO_LATE = "too_late"  # a cancellation that came after its case ran

    FINAL: ClassVar[frozenset[HREventStatus]]

    def __str__(self) -> str:
        return self.value


HREventStatus.FINAL = frozenset(
    set(HREventStatus) - {HREventStatus.ACCEPTED, HREventStatus.SCHEDULED, HREventStatus.OPENED}
)


class TaskStatus(str, enum.Enum):
    """A checklist task: open until someone marks it done or skipped."""

    OPEN = "open"
    DONE = "done"
    SKIPPED = "skipped"

    FINAL: ClassVar[frozenset[TaskStatus]]

    def __str__(self) -> str:
        return self.value


TaskStatus.FINAL = frozenset({TaskStatus.DONE, TaskStatus.SKIPPED})


class SyncStatus(str, enum.Enum):
    """One system's inventory sync."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"

    FINAL: ClassVar[frozenset[SyncStatus]]

    def __str__(self) -> str:
        return self.value


SyncStatus.FINAL = frozenset({SyncStatus.OK, SyncStatus.FAILED})


def _clean(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean(v) for v in value]
    return value


@dataclass(frozen=True)
class Equipment:
    """Something loaned to a person that must come back: a laptop, a phone, a badge."""

    asset_tag: str
    kind: str = "device"
    loaned_on: str | None = None  # ISO date
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Equipment:
        data = {k: str(v) for k, v in data.items() if k in _fields(cls) and v is not None}
        return cls(**data)


@dataclass(frozen=True)
class Person:
    """Someone who holds accounts. ``id`` is the reference people type (usually email)."""

    id: str
    email: str | None = None
    aliases: tuple[str, ...] = ()
    employee_id: str | None = None
    name: str | None = None
    type: str = "employee"  # employee | contractor
    manager: str | None = None
    end_date: datetime | None = None
    timezone: str = "UTC"
    active: bool = True
    equipment: tuple[Equipment, ...] = ()
    legal_hold: str | None = None  # the hold's name: no deletion follow-up runs while it holds

    @property
    def emails(self) -> tuple[str, ...]:
        seen = [e for e in (self.email, *self.aliases) if e]
        return tuple(dict.fromkeys(e.lower() for e in seen))

    def to_dict(self) -> dict[str, Any]:
        return _clean(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Person:
        data = dict(data)
        data["aliases"] = tuple(data.get("aliases") or ())
        data["equipment"] = tuple(
            e if isinstance(e, Equipment) else Equipment.from_dict(e) for e in data.get("equipment") or ()
        )
        if isinstance(data.get("end_date"), str):
            data["end_date"] = datetime.fromisoformat(data["end_date"])
        return cls(**{k: v for k, v in data.items() if k in _fields(cls)})


@dataclass(frozen=True)
class Account:
    """One account in one system. ``system`` is the connector instance name."""

    system: str
    id: str
    name: str
    email: str | None = None
    active: bool = True
    admin: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.system}:{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return _clean(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Account:
        return cls(**{k: v for k, v in data.items() if k in _fields(cls)})


@dataclass(frozen=True)
class Action:
    """One thing to do to one account."""

    kind: ActionKind
    account: Account
    params: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.account.system}:{self.account.id}:{self.kind.value}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "account": self.account.to_dict(), "params": _clean(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Action:
        return cls(ActionKind(data["kind"]), Account.from_dict(data["account"]), dict(data.get("params") or {}))


@dataclass(frozen=True)
class Receipt:
    """What a write did. ``before`` holds what ``undo_<kind>`` needs to restore."""

    action: Action
    changed: bool
    before: Mapping[str, Any] = field(default_factory=dict)
    reference: str | None = None  # the target system's id for this change, if any
    pending: bool = False  # accepted, finishing asynchronously (e.g. a Drive transfer)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.to_dict(),
            "changed": self.changed,
            "before": _clean(self.before),
            "reference": self.reference,
            "pending": self.pending,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        return cls(
            Action.from_dict(data["action"]),
            bool(data["changed"]),
            dict(data.get("before") or {}),
            data.get("reference"),
            bool(data.get("pending")),
            data.get("detail") or "",
        )


@dataclass(frozen=True)
class Verification:
    """The target read back after a write. ``ok`` means the desired state holds."""

    action: Action
    ok: bool
    observed: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""
    pending: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "observed": _clean(self.observed), "detail": self.detail, "pending": self.pending}


@dataclass(frozen=True)
class CheckResult:
    """Outcome of ``Connector.check()``: who we are and what rights are missing."""

    ok: bool
    identity: str = ""
    missing: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True)
class Leftover:
    """Access a person still holds, found by the residual-access check: ``kind`` is the action that removes it."""

    account: Account
    kind: ActionKind
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.account.system,
            "account": {"id": self.account.id, "name": self.account.name},
            "kind": self.kind.value,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        return f"{self.account.system} {self.account.name} {self.kind.value}: {self.detail}"


@dataclass(frozen=True)
class AccountPage:
    """One page of ``Connector.list_accounts``; ``cursor`` is None on the last page."""

    accounts: tuple[Account, ...]
    cursor: str | None = None


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}
