"""The contract every connector implements.

A connector is a class with a ``name``, a pydantic ``Settings`` model, and methods:

* read side, which must never write: ``check()``, ``discover(person)``,
  ``verify(action, receipt)`` and, for inventory, ``list_accounts(cursor)``;
* write side, one method per action kind it supports, named after the kind
  (``disable_account``, ``revoke_sessions``, ...), each idempotent and returning a
  ``Receipt`` with the before-state;
* ``undo_<kind>(receipt)`` for kinds the system lets us reverse, and ``before_<kind>(action)``,
  a read of the before-state that ``<kind>`` would record, taken before offboard's first write;
* optionally ``residual(person)``: access the person still holds that ``verify`` cannot read
  without a receipt (sessions, OAuth grants, ...), for ``offboard check``. The engine itself
  verifies ``residual_kinds`` (read back without a receipt) on every account ``discover`` finds.

Capabilities are derived from which methods exist. Connectors stay plain: no retries,
no sleeping, no threads, no audit. A call that sends several requests wraps each idempotent one
in ``self.request(send, lane=...)``: the engine then retries that request on its own under its
retry policy instead of the whole call. They translate their SDK's errors into
``offboard.errors`` and let the engine decide the rest. Secrets arrive as
``offboard.Secret`` fields of ``Settings``; a connector never reads the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from .errors import PermanentError
from .models import Account, AccountPage, Action, ActionKind, CheckResult, Leftover, Person, Receipt, Verification

T = TypeVar("T")

__all__ = ["Connector", "ConnectorSettings", "ManualTask", "NOTHING_TO_RESTORE"]

#: Kinds with no undo that take nothing an undo would give back: once the account is enabled again
#: the person signs in afresh (new sessions, new tokens). Never counted as destructive by default.
NOTHING_TO_RESTORE: frozenset[ActionKind] = frozenset({ActionKind.REVOKE_SESSIONS, ActionKind.REVOKE_TOKENS})


class ConnectorSettings(BaseModel):
    """Base for a connector's settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ManualTask:
    """A step the system offers no API for (``Connector.manual_tasks``): it joins the case's checklist.

    ``id`` is unique within the connector (the engine prefixes the instance name); ``owner``, ``due``
    (relative to the last day, e.g. ``-1d``) and ``blocking`` mean what they mean in a policy's ``tasks``."""

    id: str
    title: str
    owner: str = "it"
    due: str = "0d"
    blocking: bool = False


class Connector:
    """Base class for connectors. Subclass, set ``name`` and ``Settings``, add methods."""

    name: ClassVar[str] = ""
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    #: The validated ``Settings``; a subclass re-declares it (``settings: Settings``) for its own fields.
    settings: ConnectorSettings
    #: Default concurrency cap and rate (requests per second) for this system;
    #: the engine uses them unless the config overrides them.
    default_concurrency: ClassVar[int] = 4
    default_rate: ClassVar[float | None] = None
    #: Permissions or scopes it needs, for ``offboard connectors`` and docs.
    permissions: ClassVar[tuple[str, ...]] = ()
    #: Rate-limit lanes for systems that limit per method or per kind of request:
    #: lane -> (requests per second, burst). Call ``self.throttle(lane)`` before each
    #: request of that lane; the engine backs each lane with its own bucket.
    rate_limits: ClassVar[dict[str, tuple[float, int]]] = {}
    #: Action kinds whose ``verify(action, None)`` reads the account's current state (no receipt needed):
    #: the residual-access check (``offboard check``) reads these back on every account the person holds.
    residual_kinds: ClassVar[frozenset[ActionKind]] = frozenset(
        {ActionKind.DISABLE_ACCOUNT, ActionKind.REVOKE_TOKENS, ActionKind.REMOVE_MEMBERSHIPS}
    )

    #: Ordering constraints between this connector's action kinds on one account: ``(first, then)``
    #: means ``then`` is applied only after ``first`` is verified (when both are planned); for example
    #: a mailbox handover the vendor refuses for a suspended user comes before ``disable_account``.
    ordering: ClassVar[tuple[tuple[ActionKind, ActionKind], ...]] = ()
    #: For connectors with ``rate_limits``: the requests one action of a kind sends per lane in a bulk
    #: run (before-state read, write and read-back), for the ETA ``offboard plan`` prints. Connectors
    #: without lanes need not declare it: the engine counts its own calls (read before, apply, verify).
    calls: ClassVar[dict[ActionKind, dict[str, float]]] = {}
    #: Likewise, the requests one read-back (``verify``) of a kind sends per lane, as the residual check
    #: at a case's close makes them.
    reads: ClassVar[dict[ActionKind, dict[str, float]]] = {}
    #: Likewise, the requests ``residual()`` sends per account and lane at a case's close (after its
    #: actions: the account disabled), for connectors that override it.
    residual_calls: ClassVar[dict[str, float]] = {}
    #: Kinds the vendor documents as done by another: ``{kind: (implied_by, documentation URL)}``.
    #: In a bulk plan that holds both for one account, ``kind`` is marked covered (citing the URL)
    #: and not called. Declare only what the vendor's documentation says, never what seems likely.
    implied: ClassVar[dict[ActionKind, tuple[ActionKind, str]]] = {}

    #: Action kinds offboard cannot undo here (deleted accounts, removed enterprise seats, wiped devices):
    #: ``plan`` marks them, bulk runs halt on them without ``--allow-destructive`` or an approval, and
    #: ``undo`` names them. None: derived, every capability without an ``undo_<kind>`` except the kinds
    #: that leave nothing to restore (``NOTHING_TO_RESTORE``). Set it where an undo exists but gives back
    #: only part of what the step took.
    destructive_kinds: ClassVar[frozenset[ActionKind] | None] = None

    def __init__(self, instance: str, settings: ConnectorSettings | dict[str, Any] | None = None):
        self.instance = instance
        if not isinstance(settings, self.Settings):
            settings = self.Settings.model_validate(settings or {})
        self.settings = settings
        import structlog  # here, not at the top: `offboard --help` must start fast

        self.log = structlog.get_logger(f"offboard.connector.{self.name}").bind(system=instance)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance!r}>"

    @classmethod
    def rate_for(cls, settings: ConnectorSettings) -> float | None:
        """The default rate for an instance with ``settings`` (``default_rate`` unless the settings
        name a system with its own published limit, such as a SCIM app profile)."""
        return cls.default_rate

    def throttle(self, lane: str) -> None:
        """Wait for a token of rate-limit ``lane`` (the engine replaces this; alone it does nothing)."""

    def keep_before(self, action: Action, before: Mapping[str, Any]) -> None:
        """Hand over the state a write is about to change, read by the write itself (the engine keeps the
        first one per account as its original for undo, see ``read_before``; alone it does nothing)."""

    def request(self, send: Callable[[], T], lane: str | None = None, idempotent: bool = True) -> T:
        """Send one request: ``send()``, which raises ``offboard.errors`` on failure.

        Inside an engine call (the engine replaces this), an idempotent request that fails with a
        ``TransientError`` or ``RateLimited`` is sent again on its own under the engine's retry policy
        (backoff, Retry-After pausing ``lane``, a token per retry, the call's time budget), so one
        failed request of a call that lists then writes does not send the whole call again. Pass
        ``idempotent=False`` for a write that must not be sent twice (a POST that creates); a
        request the vendor's answer makes safe to repeat (a PATCH that sets a field, a DELETE whose
        repeat answers 404 and is taken as done) is idempotent. Alone, it sends once."""
        return send()

    # -- capabilities -------------------------------------------------------

    @classmethod
    def capabilities(cls) -> frozenset[ActionKind]:
        """Action kinds this connector can apply: one method per kind."""
        return frozenset(k for k in ActionKind if callable(getattr(cls, k.value, None)))

    @classmethod
    def reversible(cls) -> frozenset[ActionKind]:
        """Action kinds that have an ``undo_<kind>`` method (and are not declared ``destructive_kinds``)."""
        kinds = frozenset(k for k in cls.capabilities() if callable(getattr(cls, f"undo_{k.value}", None)))
        return kinds - cls.destructive_kinds if cls.destructive_kinds is not None else kinds

    @classmethod
    def destructive(cls) -> frozenset[ActionKind]:
        """Action kinds that cannot be undone by offboard (see ``destructive_kinds``)."""
        if cls.destructive_kinds is not None:
            return cls.destructive_kinds & cls.capabilities()
        return frozenset(cls.capabilities() - cls.reversible() - NOTHING_TO_RESTORE)

    def can_undo(self, kind: ActionKind) -> bool:
        """Whether ``undo`` can restore what ``kind`` did on this instance (what ``offboard undo`` tries)."""
        return callable(getattr(self, f"undo_{kind.value}", None)) and not self.is_destructive(kind)

    def is_destructive(self, kind: ActionKind) -> bool:
        """Whether ``kind`` cannot be undone on this instance; a connector whose settings change what a
        step does there (a SCIM app profile) overrides it. Default: the class's ``destructive()``."""
        return kind in self.destructive()

    @classmethod
    def can_list(cls) -> bool:
        """True when the connector can enumerate accounts for the inventory."""
        return cls.list_accounts is not Connector.list_accounts

    # -- read side ------------------------------------------------------------

    def check(self) -> CheckResult:
        """Prove the credentials work; name the permissions that are missing."""
        raise NotImplementedError

    def discover(self, person: Person) -> list[Account]:
        """Find this person's accounts in the system. Must not write."""
        raise NotImplementedError

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        """Read the target back and say whether ``action``'s desired state holds."""
        raise NotImplementedError

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        """One page of every account in the system, for the inventory."""
        raise NotImplementedError

    def residual(self, person: Person, accounts: list[Account]) -> list[Leftover]:
        """Optional, read-only: access ``person`` still holds beyond what ``residual_kinds`` read back
        (sessions, OAuth grants, pending invitations, ...) on ``accounts`` (what ``discover`` found; may be
        empty, for access that needs no account, such as an invitation). Must not write. Leftovers of an
        account and kind that ``verify`` also reads must name every item that read-back counts: the check
        prints them instead of the read-back's summary."""
        return []

    def manual_tasks(self, actions: list[Action], person: Person) -> list[ManualTask]:
        """Optional, read-only, no I/O: steps the system has no API for (an Exchange Online command, ...)
        that ``actions`` (the whole plan for ``person``, every system's; this connector's are those whose
        ``account.system`` is ``self.instance``) call for; the plan shows them as checklist tasks."""
        return []

    def close(self) -> None:
        """Release connections."""

    # -- dispatch -------------------------------------------------------------

    def apply(self, action: Action) -> Receipt:
        """Run the write method for ``action.kind``."""
        method = getattr(self, action.kind.value, None)
        if method is None:
            raise PermanentError(f"{self.name} cannot {action.kind.value}", system=self.instance)
        return method(action)

    def read_before(self, action: Action) -> dict[str, Any] | None:
        """Read, without writing, what ``action``'s write would record as ``Receipt.before`` now.

        The engine calls it before the first write of the first case that touches an account and
        keeps the answer (``store.originals``): undo restores that original, even when a lost reply
        let a later attempt read offboard's own change. A connector opts in per kind with a
        ``before_<kind>(action)`` method; None when it has none."""
        method = getattr(self, f"before_{action.kind.value}", None)
        return dict(method(action)) if method is not None else None

    def undo(self, receipt: Receipt) -> Receipt:
        """Restore the before-state recorded in ``receipt``."""
        method = getattr(self, f"undo_{receipt.action.kind.value}", None)
        if method is None:
            raise PermanentError(f"{self.name} cannot undo {receipt.action.kind.value}", system=self.instance)
        return method(receipt)
