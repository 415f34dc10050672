"""Critical-first scheduling of bulk runs: everyone loses access before anyone is cleaned up.

Each action kind has a priority: **critical** kinds cut access (``disable_account``,
``revoke_sessions``, ``revoke_tokens``, ``revoke_app_grants``); every other kind is
**cleanup** (memberships, licences, transfers, deletion, ...). An action that a critical
action must wait for (a connector's ``ordering`` pair ``(first, then)`` with ``then``
critical, such as a mailbox handover the vendor refuses once the account is disabled) is
critical too, transitively.

In a bulk run (more than one case) each account's chain is split in two, keeping the
chain's order within each part: the critical part, then the cleanup part. Per system,
every account's critical part runs before the first cleanup part starts, so the system's
rate budget is spent on cutting everyone's access first. Every ``(first, then)`` pair
still holds: if ``then`` is critical, so is ``first``, and both keep their order in the
critical part; if only ``first`` is critical it runs in the earlier phase; if neither,
their order in the cleanup part is the chain's.

A system whose vendor meters each endpoint on its own (``Connector.rate_limits``, no
budget shared by every request) may run an account's cleanup as soon as that account's
critical part has ended, when the cleanup's requests take none of the lanes the critical
actions take (``early_cleanup``: both declared in ``Connector.calls`` and ``reads``). Such
cleanup spends no token the access cuts need: on Okta the critical phase is bound by the
System Log's 50 reads a minute, and the memberships' lanes would otherwise idle through it.

``Phases`` runs this for one batch: it hands out the critical parts at once and a
system's cleanup parts when that system's last critical part ends (or, on a system with
early cleanup, each when its account's critical part ends), and records per system the
time when the last person lost access there and when its cleanup ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import OffboardError
from ..models import ActionKind

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = [
    "CRITICAL",
    "critical_kinds",
    "priority",
    "split",
    "lanes_of",
    "early_cleanup",
    "runs_cleanup_early",
    "Phases",
    "SystemTiming",
    "Gate",
    "run_bulk",
    "bulk_plan",
]

#: The kinds that cut access; the rest is cleanup.
CRITICAL: frozenset[ActionKind] = frozenset(
    {
        ActionKind.DISABLE_ACCOUNT,
        ActionKind.REVOKE_SESSIONS,
        ActionKind.REVOKE_TOKENS,
        ActionKind.REVOKE_APP_GRANTS,
    }
)


def priority(kind: ActionKind | str) -> int:
    """0 for a kind that cuts access, 1 for cleanup."""
    return 0 if ActionKind(kind) in CRITICAL else 1


def critical_kinds(ordering: Iterable[tuple[ActionKind, ActionKind]] = ()) -> frozenset[ActionKind]:
    """``CRITICAL`` plus every kind a critical kind waits on through ``ordering`` (transitively)."""
    pairs = [(ActionKind(first), ActionKind(then)) for first, then in ordering]
    found = set(CRITICAL)
    grew = True
    while grew:
        grew = False
        for first, then in pairs:
            if then in found and first not in found:
                found.add(first)
                grew = True
    return frozenset(found)


def split(
    rows: list[dict[str, Any]], critical: frozenset[ActionKind]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One account's chain as (critical rows, cleanup rows), each in the chain's order."""
    first = [r for r in rows if ActionKind(r["kind"]) in critical]
    rest = [r for r in rows if ActionKind(r["kind"]) not in critical]
    return first, rest


def lanes_of(cls: Any, kind: ActionKind) -> frozenset[str] | None:
    """The rate-limit lanes one action of ``kind`` and its read-back take (``Connector.calls``, ``reads``), or
    None when the connector does not declare them."""
    declared = cls.calls.get(kind) if cls.rate_limits else None
    if not declared:
        return None
    return frozenset(declared) | frozenset(cls.reads.get(kind, {}))


def early_cleanup(cls: Any, kinds: Iterable[ActionKind], critical: frozenset[ActionKind], shared: bool) -> bool:
    """Whether cleanup of ``kinds`` may run beside the critical phase on this system: every kind's lanes are
    declared, cleanup and critical kinds share none, and no bucket meters every request (``shared``)."""
    if shared:
        return False
    lanes: tuple[set[str], set[str]] = (set(), set())  # (critical, cleanup)
    for kind in set(kinds):
        found = lanes_of(cls, kind)
        if found is None:
            return False
        lanes[kind not in critical].update(found)
    return bool(lanes[1]) and not lanes[0] & lanes[1]


@dataclass
class SystemTiming:
    """When a system's phases ended, in seconds after the batch started (None: that phase had no work)."""

    access_cut: float | None = None  # the last critical action on this system ended
    cleanup_end: float | None = None  # the last action of any kind on this system ended
    critical_chains: int = 0
    cleanup_chains: int = 0
    started: float = 0.0  # the batch's start on the engine's monotonic clock

    def to_entry(self) -> dict[str, Any]:
        """Whole milliseconds, for audit entries (which hold no floats)."""
        return {
            "access_cut_ms": None if self.access_cut is None else int(self.access_cut * 1000),
            "cleanup_end_ms": None if self.cleanup_end is None else int(self.cleanup_end * 1000),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_cut_seconds": None if self.access_cut is None else round(self.access_cut, 3),
            "cleanup_end_seconds": None if self.cleanup_end is None else round(self.cleanup_end, 3),
            "critical_chains": self.critical_chains,
            "cleanup_chains": self.cleanup_chains,
        }


class Gate:
    """Per system, whether everyone's access there is cut: a bulk run's closing checks read a system only then.

    A system the batch does not act on is open from the start."""

    def __init__(self, systems: Iterable[str] = ()):
        self._shut = {system: threading.Event() for system in systems}

    def open(self, system: str) -> None:
        event = self._shut.get(system)
        if event is not None:
            event.set()

    def is_open(self, system: str) -> bool:
        event = self._shut.get(system)
        return event is None or event.is_set()

    def wait(self, system: str) -> None:
        event = self._shut.get(system)
        if event is not None:
            event.wait()

    def open_all(self) -> None:
        for event in self._shut.values():
            event.set()


@dataclass
class _System:
    critical: list[tuple[Any, Any]] = field(default_factory=list)  # (part, its account's key)
    cleanup: list[tuple[Any, Any]] = field(default_factory=list)
    open_critical: int = 0
    open_all: int = 0
    early: bool = False  # cleanup runs beside the critical phase, each part after its account's critical part
    waiting: dict[Any, list[Any]] = field(default_factory=dict)  # account key -> cleanup parts held (early)


class Phases:
    """Runs one batch of chain parts critical-first per system; ``wait()`` returns when all have ended.

    ``submit(system, fn)`` queues ``fn`` on that system's executor. A part is any object;
    ``run(part)`` does its work. Parts are added with ``add(system, part, critical, key)``.
    On a system marked ``early(system)``, a cleanup part starts when the critical part with
    the same ``key`` (its account) has ended, through ``submit_early`` (threads of its own:
    the system's executor is queued full of critical parts).
    """

    def __init__(
        self,
        submit: Callable[[str, Callable[[], None]], Any],
        run: Callable[[Any], None],
        clock: Callable[[], float] = time.monotonic,
        submit_early: Callable[[str, Callable[[], None]], Any] | None = None,
    ):
        self._submit = submit
        self._submit_early = submit_early or submit
        self._run = run
        self._clock = clock
        self._systems: dict[str, _System] = {}
        self._cond = threading.Condition()
        self._open = 0
        #: Called once per system, when its last critical part has ended (at ``start`` if it has none).
        self.on_system_cut: Callable[[str], None] | None = None
        self._errors: list[BaseException] = []
        self.timing: dict[str, SystemTiming] = {}
        self._start = 0.0

    def add(self, system: str, part: Any, critical: bool, key: Any = None) -> None:
        entry = self._systems.setdefault(system, _System())
        (entry.critical if critical else entry.cleanup).append((part, key))

    def early(self, system: str) -> None:
        """Let ``system``'s cleanup run beside its critical phase, each part after its account's critical part."""
        self._systems.setdefault(system, _System()).early = True

    def start(self) -> None:
        """Hand out every system's critical parts (or its cleanup parts when it has no critical one)."""
        self._start = self._clock()
        with self._cond:
            for system, entry in self._systems.items():
                self.timing[system] = SystemTiming(
                    critical_chains=len(entry.critical), cleanup_chains=len(entry.cleanup), started=self._start
                )
                entry.open_critical = len(entry.critical)
                entry.open_all = len(entry.critical) + len(entry.cleanup)
                self._open += entry.open_all
        if self.on_system_cut is not None:
            for system, entry in self._systems.items():
                if not entry.critical:
                    self.on_system_cut(system)
        now: list[tuple[str, Any]] = []  # early cleanup parts whose account has no critical part here
        with self._cond:
            for system, entry in self._systems.items():
                if entry.early and entry.critical:
                    held = {key for _, key in entry.critical}
                    for item in entry.cleanup:
                        if item[1] in held:
                            entry.waiting.setdefault(item[1], []).append(item)
                        else:
                            now.append((system, item))
        for system, entry in self._systems.items():
            first = entry.critical or entry.cleanup
            for part in first:
                self._queue(system, part, critical=bool(entry.critical))
        for system, item in now:
            self._queue(system, item, critical=False, early=True)

    def _queue(self, system: str, item: tuple[Any, Any], critical: bool, early: bool = False) -> None:
        def job() -> None:
            try:
                self._run(item[0])
            except BaseException as exc:  # kept for wait(); the batch goes on for everyone else
                with self._cond:
                    self._errors.append(exc)
            finally:
                self._ended(system, item[1], critical)

        (self._submit_early if early else self._submit)(system, job)

    def _ended(self, system: str, key: Any, critical: bool) -> None:
        entry = self._systems[system]
        release: list[Any] | None = None  # set when this part was the system's last critical one
        follow: list[Any] = []  # early cleanup: this account's cleanup parts, now that its access is cut here
        with self._cond:
            now = self._clock() - self._start
            timing = self.timing[system]
            entry.open_all -= 1
            if critical:
                entry.open_critical -= 1
                if entry.early:
                    follow = entry.waiting.pop(key, [])
                if entry.open_critical == 0:
                    timing.access_cut = now
                    release = [] if entry.early else entry.cleanup
            if entry.open_all == 0:
                timing.cleanup_end = now
        try:
            for later in follow:
                self._queue(system, later, critical=False, early=True)
            if release is not None and self.on_system_cut is not None:
                self.on_system_cut(system)
            for later in release or ():  # this system's access is cut for everyone: its cleanup may start
                self._queue(system, later, critical=False)
        finally:
            # Counted as ended only now: ``wait()`` must not return while the system-cut callback is still to
            # run; it did when this was the batch's last part (then an access-cut callback that submitted the
            # held closes), the caller shut the close pool, and the held cases were closed one by one after it.
            with self._cond:
                self._open -= 1
                if self._open == 0:
                    self._cond.notify_all()

    def wait(self) -> None:
        """Block until every part has ended; re-raise the first error a part raised."""
        with self._cond:
            while self._open > 0:
                self._cond.wait()
            if self._errors:
                raise self._errors[0]


def run_bulk(
    engine: Engine,
    chains: dict[tuple[str, str, str], list[dict[str, Any]]],
    persons: dict[str, str],
    results: dict[str, Any],
    progress: Callable[[dict[str, Any]], None] | None = None,
    closers: int | None = None,
) -> dict[str, SystemTiming]:
    """Run a bulk batch's ``chains`` (keyed by case, system, account) critical-first; each system's timing.

    Each case's closing check (``cases.check_on_close``) reads a system as soon as the person's
    work there has ended, on threads of that system's own (``_check.check_system``): a
    system's threads must not wait on another system's rate limit, and a check held until the
    person's slowest system was through left every system's reads of a batch's last people to
    its end (1,000 people: Slack's reads 27 s after Google's last token). Those reads are
    cleanup too: a system is read only once it has cut everyone's access (``Gate``). The case
    closes (``results[case_id]``) when its parts and checks have ended, on a pool of its own
    (``closers`` threads: ``limits.workers`` at least, a thread per case up to 512); the close
    reads only the systems not checked already. Before, a close waited for every system:
    under failing vendors the batch's 200 closes all began when the slowest system (Slack) was
    through and took the wall 33 s past the last action.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ._check import check_system
    from ._connectors import connector_class

    left: dict[str, int] = {}
    lock = threading.Lock()
    cases = {case_id for case_id, _, _ in chains}
    workers = engine.config.limits.workers
    closing = ThreadPoolExecutor(closers or max(workers, min(len(cases), 512)), thread_name_prefix="offboard-close")
    closes: list[Any] = []
    systems = {system for _, system, _ in chains}
    gate = Gate(systems)

    checking = engine.config.cases.check_on_close
    open_on: dict[tuple[str, str], int] = {}  # (case, system) -> its parts not yet ended there
    checked: dict[str, dict[str, Any]] = {}  # case -> system -> its closing check's findings
    subjects: dict[str, Any] = {}  # case -> its person, policy and accounts, for its systems' checks
    held: dict[str, list[str]] = {}  # system -> cases whose check there waits for everyone's access to be cut
    check_pools: dict[str, ThreadPoolExecutor] = {}

    def close(case_id: str) -> None:
        with lock:
            done = checked.pop(case_id, {})
            subjects.pop(case_id, None)
        results[case_id] = engine.close_case(case_id, seal=False, gate=gate, checked=done)

    def finish(case_id: str) -> None:  # one part or one system's check of the case has ended
        with lock:
            left[case_id] -= 1
            if left[case_id] == 0:
                closes.append(closing.submit(close, case_id))

    def check(case_id: str, system: str) -> None:
        found = check_system(engine, case_id, system, subjects)
        with lock:
            checked.setdefault(case_id, {})[system] = found
        finish(case_id)

    def submit_check(case_id: str, system: str) -> None:
        with lock:
            pool = check_pools.get(system)
            if pool is None:  # most of its threads wait for a token or a slot, as the system's own pool's do
                size = engine._pool_threads(system)
                pool = check_pools[system] = ThreadPoolExecutor(size, thread_name_prefix=f"offboard-{system}-check")
        pool.submit(check, case_id, system)

    def system_cut(system: str) -> None:  # everyone's access is cut there: the checks held for it may read it
        with lock:
            gate.open(system)
            ready = held.pop(system, [])
        for case_id in ready:
            submit_check(case_id, system)

    def run(case_id: str, system: str, rows: list[dict[str, Any]]) -> None:
        engine._actions.run_chain(case_id, persons[case_id], rows, progress)
        ready = False
        with lock:
            key = (case_id, system)
            if key in open_on:
                open_on[key] -= 1
                if open_on[key] == 0:  # the person's work here is done: check it now or once the system is through
                    ready = gate.is_open(system)
                    if not ready:
                        held.setdefault(system, []).append(case_id)
        if ready:
            submit_check(case_id, system)
        finish(case_id)

    early_pools: dict[str, ThreadPoolExecutor] = {}

    def submit_early(system: str, job: Callable[[], None]) -> Any:
        with lock:
            pool = early_pools.get(system)
            if pool is None:  # as many threads as the system's own pool: most of them wait for a token
                size = engine._pool_threads(system)
                pool = early_pools[system] = ThreadPoolExecutor(size, thread_name_prefix=f"offboard-{system}-cleanup")
        return pool.submit(job)

    phases = Phases(
        lambda system, job: engine._system_pool(system).submit(job),
        lambda part: run(*part),
        clock=lambda: engine.monotonic(),
        submit_early=submit_early,
    )
    phases.on_system_cut = system_cut
    critical: dict[str, frozenset[ActionKind]] = {}
    kinds: dict[str, set[ActionKind]] = {}
    for (case_id, system, account), rows in chains.items():
        if system not in critical:
            try:
                ordering = connector_class(engine, system).ordering
            except OffboardError:  # no such connector any more: its chains fail in run_chain, naming it
                ordering = ()
            critical[system] = critical_kinds(ordering)
        kinds.setdefault(system, set()).update(ActionKind(row["kind"]) for row in rows)
        parts = [(p, c) for p, c in zip(split(rows, critical[system]), (True, False), strict=True) if p]
        left[case_id] = left.get(case_id, 0) + len(parts)
        if checking and system in engine.config.connectors:
            if (case_id, system) not in open_on:
                left[case_id] += 1  # the system's closing check, once the parts here have ended
            open_on[(case_id, system)] = open_on.get((case_id, system), 0) + len(parts)
        for part, is_critical in parts:
            phases.add(system, (case_id, system, part), is_critical, key=(case_id, account))
    for system, used in kinds.items():
        if runs_cleanup_early(engine, system, used, critical[system]):
            phases.early(system)
    try:
        phases.start()
        phases.wait()
    finally:
        for system in systems:  # after an error too: no check or close may wait for ever on a system whose
            system_cut(system)  # work stopped
        with lock:
            pools = list(check_pools.values())
        for pool in pools:  # a check's end may submit its case's close: the checks end before the close pool shuts
            pool.shutdown(wait=True)
        closing.shutdown(wait=True)
        for pool in early_pools.values():
            pool.shutdown(wait=True)
    for future in closes:
        future.result()
    return phases.timing


def runs_cleanup_early(engine: Engine, system: str, kinds: set[ActionKind], critical: frozenset[ActionKind]) -> bool:
    """``early_cleanup`` for one system of a batch, with its own bucket's configured rate."""
    from ._connectors import connector_class

    try:
        cls = connector_class(engine, system)
    except OffboardError:
        return False
    configured = engine.config.connectors.get(system)  # the system's own bucket, as ``_connectors._build`` makes it
    rate = configured.rate if configured is not None and configured.rate is not None else cls.default_rate
    return early_cleanup(cls, kinds, critical, shared=rate is not None)


def bulk_plan(engine: Engine, plan: Any) -> Any:
    """``plan`` as one of many: implied actions marked covered, the rest told they run in bulk.

    An action whose kind the connector's vendor documents as done by another kind planned for
    the same account (``Connector.implied``) moves to ``plan.covered`` with the documentation's
    address, and is not called. Every other action gets ``params["bulk"] = True``: a connector
    may then skip requests that serve only the receipt's detail (never a before-state that an
    undo needs), as the connector pages in docs/connectors/ say.
    """
    from ..models import Action
    from ._connectors import connector_class

    planned = {(a.account.ref, a.kind) for a in plan.actions}
    implied = {s: connector_class(engine, s).implied for s in {a.account.system for a in plan.actions}}
    kept = []
    for action in plan.actions:
        by = implied[action.account.system].get(action.kind)
        if by is not None and (action.account.ref, by[0]) in planned and by[0] is not action.kind:
            plan.covered.append((action, by[0], by[1]))
            continue
        kept.append(Action(action.kind, action.account, {**action.params, "bulk": True}))
    plan.actions = kept
    return plan
