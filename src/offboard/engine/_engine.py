"""The orchestrator: resolve -> gather -> plan -> guard -> apply -> verify -> record.

The engine owns everything connectors must not: threads, per-system concurrency caps
and token buckets, retries (``_retry``: a call's own backoff, a vendor's Retry-After for
all, a time budget), timing, and the record of every step (the store, and the audit log
through one channel, ``Recorder``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from ..checklist._tasks import checklist_for, last_day, not_before, task_rows
from ..checklist._tasks import counts as task_counts
from ..config._config import Config
from ..config._logging import redact
from ..config._policy import Policy, Protection, load_policies
from ..connector import Connector
from ..errors import AuthError, CaseConflict, ConfigError, ConnectorError, OffboardError, UnknownPerson
from ..inventory._people import configured_sources, nearest_people
from ..models import (
    Account,
    Action,
    ActionKind,
    ActionStatus,
    CaseStatus,
    FollowUpStatus,
    Person,
)
from ..state._store import Store, dumps, new_id, utcnow
from ._actions import ActionRunner
from ._close import close_case
from ._connectors import build_connector, concurrency_cap, rebuild_connector
from ._descriptors import raise_open_files_limit
from ._destructive import destructive_steps
from ._handover import HANDOVER_KINDS, handover_params, successor
from ._hold import DELETIONS, recent_setups, refuse_held
from ._leases import LeaseKeeper, describe
from ._manual import with_manual_tasks
from ._ordering import order_kinds
from ._plan import CaseResult, Plan
from ._ratelimit import TokenBucket
from ._recorder import Recorder
from ._recorder import iso as _iso
from ._recorder import open_audit as _open_audit
from ._retry import CallScope, Scopes, call_with_retries, retry_request
from ._schedule import Gate, bulk_plan, run_bulk, split
from ._stalled import CallSlot, StalledRequests
from ._undo import undo_case

__all__ = ["Engine", "Plan", "CaseResult"]

log = structlog.get_logger("offboard.engine")
THREADS_PER_SLOT = 20  # a system's pool: threads per concurrency slot (``_system_pool``)


class Engine:
    """Runs cases. One per process; thread-safe."""

    def __init__(
        self, config: Config, store: Store, data_dir: Path, *, audit: Any = None, clock: Callable[[], datetime] = utcnow
    ):
        self.config = config
        self.store = store
        self.data_dir = data_dir
        self.clock = clock
        self.record = Recorder(store, audit)
        base = config.source.parent if config.source else None
        self.policies = load_policies(config.policies, base)
        self._connectors: dict[str, Connector] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        #: Systems held after an authentication failure: (since, why); ``connector`` lifts the hold when it ends.
        self._stopped: dict[str, tuple[float, str]] = {}
        self._retired: list[Connector] = []
        self._building: dict[str, threading.Lock] = {}  # one set-up at a time per connector
        self._setup_failed: dict[str, tuple[float, ConnectorError]] = {}
        self._lock = threading.Lock()
        self._scopes = Scopes()  # the call each thread is running: requests retried inside it (``request``)
        self.stalled = StalledRequests()  # a request that stalled lends its call's slot (``_stalled``)
        #: Replaceable together in tests: the buckets read ``monotonic``, retries ``sleep``.
        self.sleep: Callable[[float], None] = time.sleep
        self.monotonic: Callable[[], float] = time.monotonic
        self._pool = ThreadPoolExecutor(max_workers=config.limits.workers, thread_name_prefix="offboard")
        self._system_pools: dict[str, ThreadPoolExecutor] = {}
        #: Set by ``_distributed.attach`` (``Engine.open`` with ``execution: distributed``): jobs go to workers.
        self.dispatcher: Any = None
        #: Screens may watch discovery: ``on_discovering(systems)``, then ``on_discovered(system, n, error)`` each.
        self.on_discovering: Callable[[list[str]], None] | None = None
        self.on_discovered: Callable[[str, int, str | None], None] | None = None
        self.bucket_factory: Callable[..., Any] = TokenBucket
        self._actions = ActionRunner(self)
        self.leases = LeaseKeeper(store, config.limits.lease_seconds)
        #: Per system, when the last bulk run cut everyone's access and ended its cleanup (``_schedule``).
        self.last_timing: dict[str, Any] = {}

    @classmethod
    def open(cls, config: Config, data_dir: Path, **kw: Any) -> Engine:
        """An engine with its store and audit log in ``data_dir``, executing as ``config.execution`` says."""
        raise_open_files_limit()  # a bulk run holds many connections at once (``_descriptors``)
        store = Store.open(config.store, data_dir)
        audit = kw.pop("audit", None)
        if audit is None:
            seals = store.audit_seals if config.execution != "distributed" else None  # there: audit_checkpoints
            audit = _open_audit(data_dir, config.audit.get("origin"), seals, config.audit.get("witnesses"))
        engine = cls(config, store, data_dir, audit=audit, **kw)
        if config.execution == "distributed":  # workers run the jobs; rate limits and the log are shared
            from ._distributed import attach

            try:
                attach(engine)
            except BaseException:
                engine.close()
                raise
        return engine

    def wait_sealed(self) -> None:
        """Wait for the background seal of the cases closed so far: their entries are then under a checkpoint."""
        self.record.wait_sealed()

    def close(self) -> None:
        self.stalled.close()
        self._pool.shutdown(wait=True)
        for pool in self._system_pools.values():
            pool.shutdown(wait=True)
        self.leases.close()
        for connector in [*self._retired, *self._connectors.values()]:
            connector.close()
        self.record.close()
        self.store.close()

    # -- connectors -------------------------------------------------------------

    def connector(self, instance: str) -> Connector:
        """The configured connector instance, built on first use; its set-up is retried like any call."""
        if self._auth_hold_ended(instance):  # a long-running process picks up rotated credentials
            log.info("authentication hold ended; the connector is built again", system=instance)
            rebuild_connector(self, instance)
        return build_connector(self, instance)

    def _auth_held(self, instance: str) -> str | None:
        """Why calls to ``instance`` fail at once: an authentication failure less than ``action_budget`` ago."""
        stopped = self._stopped.get(instance)
        if stopped is None or self.monotonic() - stopped[0] >= self.config.limits.action_budget:
            return None
        return stopped[1]

    def _auth_hold_ended(self, instance: str) -> bool:
        """True once, for the first caller after ``instance``'s authentication hold has passed."""
        stopped = self._stopped.get(instance)
        if stopped is None or self._auth_held(instance) is not None:
            return False
        with self._lock:
            if self._stopped.get(instance) is not stopped:
                return False
            del self._stopped[instance]
        return True

    def _lane_bucket(self, instance: str, lane: str | None, strict: bool = False) -> Any:
        """The bucket of one rate-limit lane of a system, or the system's own bucket."""
        bucket = self._buckets.get(f"{instance}:{lane}") if lane else None
        if bucket is None:
            if strict and lane:
                raise ConfigError(
                    f"connector {instance!r} throttles on lane {lane!r}, which it does not declare in rate_limits"
                )
            return self._buckets[instance]
        return bucket

    def _case(self, case_id: str) -> dict[str, Any]:
        case = self.store.case(case_id)
        if case is None:
            raise OffboardError(f"no case {case_id!r}")
        return case

    def _throttle(self, instance: str, lane: str) -> None:
        # A call waiting for a lane's token is not in flight: its slot goes to a call on another lane meanwhile
        # (Okta's System Log allows 50 reads a minute; its memberships' lanes are not held up behind them).
        scope = self._scopes.current
        sleep = scope.sleep if scope is not None and scope.system == instance else self.sleep
        self._buckets[instance].acquire(sleep)
        self._lane_bucket(instance, lane, strict=True).acquire(sleep)

    def rate_limit_waits(self) -> dict[str, float]:
        """Seconds spent waiting for each system's (and lane's) rate limit, for metrics."""
        return {name: bucket.waited for name, bucket in list(self._buckets.items())}

    def enabled_connectors(self) -> list[str]:
        return [name for name, cfg in self.config.connectors.items() if cfg.enabled]

    def check_connectors(self) -> None:
        """Build every enabled connector now, so configuration errors surface before any write."""
        for name in self.enabled_connectors():
            self.connector(name)

    def call(self, instance: str, fn: Callable[..., Any], *args: Any) -> tuple[Any, int]:
        """Call ``fn`` for ``instance`` under its cap and bucket, retrying what ``_retry`` says; (result, attempts).

        The attempts count the requests the connector marked with ``request`` and the engine sent again."""
        bucket, slots = self._buckets[instance], self._slots[instance]
        per_request = bool(type(self._connectors[instance]).rate_limits)  # such connectors take tokens in throttle()
        cap = concurrency_cap(self, instance, type(self._connectors[instance]))

        def attempt() -> Any:
            held = self._auth_held(instance)
            if held is not None:
                raise AuthError(f"stopped after an authentication failure: {held}", system=instance)
            if not per_request:
                bucket.acquire(self.sleep)
            with slots:
                scope.slot = CallSlot(slots, cap)
                try:
                    return fn(*args)
                finally:
                    scope.slot = None

        def token(lane: str | None) -> None:  # one more request inside the call
            bucket.acquire(sleep_unslotted)
            if per_request and lane:
                self._lane_bucket(instance, lane, strict=True).acquire(sleep_unslotted)

        def sleep_unslotted(seconds: float) -> None:  # a request's backoff gives its slot to another call
            slot = scope.slot
            gave = slot is not None and slot.give()
            try:
                self.sleep(seconds)
            finally:
                if gave:
                    slot.take()

        def pause(lane: str | None, seconds: float) -> None:
            self._lane_bucket(instance, lane).pause(seconds)

        scope = CallScope(
            instance,
            self.monotonic(),
            token,
            pause,
            sleep_unslotted,
            watch=lambda: self.stalled.watch(instance, scope.slot),
        )
        outer, self._scopes.current = self._scopes.current, scope
        try:
            result, attempts = call_with_retries(
                attempt,
                system=instance,
                limits=self.config.limits,
                pause=pause,
                sleep=self.sleep,
                clock=lambda: self.monotonic(),
            )
        except ConnectorError as exc:
            exc.attempts = getattr(exc, "attempts", 1) + scope.retries  # type: ignore[attr-defined]
            if isinstance(exc, AuthError):  # hold this system: its later calls fail at once until the hold ends
                self._stopped.setdefault(instance, (self.monotonic(), str(exc)))
            raise
        finally:
            self._scopes.current = outer
        return result, attempts + scope.retries

    def _request(self, instance: str, send: Callable[[], Any], lane: str | None = None, idempotent: bool = True) -> Any:
        """``Connector.request`` for ``instance``: one request, retried on its own inside the running call."""
        scope = self._scopes.current
        if scope is not None and scope.system != instance:
            scope = None
        return retry_request(
            send, scope, lane=lane, idempotent=idempotent, limits=self.config.limits, clock=lambda: self.monotonic()
        )

    # -- resolve, gather, plan ---------------------------------------------------

    def people(self) -> list[Any]:
        """The configured people sources."""
        return [source for _, source in configured_sources(self.config)]

    def resolve(self, ref: str) -> Person:
        """The person ``ref`` names, from the people sources, else a bare reference."""
        ref = ref.strip()
        if not ref:
            raise UnknownPerson("an empty person reference was given")
        for source in self.people():
            person = source.find(ref)
            if person:
                return person
        if self.config.people:
            raise UnknownPerson(
                f"nobody matches {ref!r} in the configured people sources", suggestions=self.nearest_people(ref)
            )
        return Person(id=ref, email=ref if "@" in ref else None, employee_id=None if "@" in ref else ref)

    def nearest_people(self, ref: str) -> list[str]:
        """Known identifiers close to ``ref``, from the people sources and the inventory (for "did you mean")."""
        return nearest_people(ref, self.people(), self.store)

    def gather(self, person: Person, systems: Iterable[str] | None = None) -> tuple[list[Account], dict[str, str]]:
        """Discover the person's accounts on every enabled connector (or those of ``systems``), in parallel."""
        wanted = None if systems is None else set(systems)
        names = [n for n in self.enabled_connectors() if wanted is None or n in wanted]
        for name in names:
            self.connector(name)
        futures = {name: self._pool.submit(self.call, name, self._connectors[name].discover, person) for name in names}
        if self.on_discovering is not None:
            self.on_discovering(list(names))
        found_by: dict[str, list[Account]] = {}
        errors: dict[str, str] = {}
        for future in as_completed(futures.values()):
            name = next(n for n, f in futures.items() if f is future)
            try:
                found_by[name] = list(future.result()[0])
            except ConnectorError as exc:
                errors[name] = redact(f"{type(exc).__name__}: {exc}")
            if self.on_discovered is not None:
                self.on_discovered(name, len(found_by.get(name, ())), errors.get(name))
        return [a for name in futures for a in found_by.get(name, ())], errors

    def policy_for(self, person: Person, name: str | None = None) -> Policy:
        if name is None:
            name = self.config.policy_by_type.get(person.type, self.config.default_policy)
        policy = self.policies.get(name)
        if policy is None:
            raise ConfigError(f"unknown policy {name!r} (known: {', '.join(sorted(self.policies))})")
        return policy

    def estimate(self, plans: list[Plan], latency: float = 0.05) -> Any:
        """The ETA of running ``plans`` together (``_eta.estimate``)."""
        from ._eta import estimate

        return estimate(self, plans, latency)

    def plan(self, ref: str | Person, policy: str | None = None, *, bulk: bool = False) -> Plan:
        """What would happen for ``ref``; reads only."""
        person = ref if isinstance(ref, Person) else self.resolve(ref)
        chosen = self.policy_for(person, policy)
        accounts, errors = self.gather(person)
        if not accounts and not errors and not self.config.people:
            raise UnknownPerson(
                f"no account matches {person.id!r} in any system "
                f"({', '.join(self.enabled_connectors()) or 'no connectors configured'})",
                suggestions=self.nearest_people(person.id),
            )
        plan = self.plan_for(person, chosen, accounts, errors, bulk=bulk)
        plan.recent = recent_setups(self, person, accounts, chosen.handover.recent_days, self.clock())
        return plan

    def plan_for(
        self,
        person: Person,
        policy: Policy,
        accounts: Iterable[Account],
        errors: dict[str, str] | None = None,
        *,
        bulk: bool = False,
    ) -> Plan:
        """Apply ``policy`` and the guards to known accounts; ``bulk``: one of many (``_schedule.bulk_plan``)."""
        now = self.clock()
        plan = Plan(person, policy, [], errors=dict(errors or {}), as_of=now)
        protection = Protection.combine(policy, self.config.protected)
        for account in accounts:
            reason = protection.reason(account)
            if reason:
                plan.protected.append((account, reason))
                continue
            cfg = self.config.connectors[account.system]
            cls = type(self.connector(account.system))
            kinds, params = policy.actions_for(account.system, cfg.type)
            params = {k: (person.manager if v == "manager" else v) for k, v in params.items()}
            capable = cls.capabilities()  # once per account: a bulk plan makes tens of thousands of these
            supported = [k for k in kinds if k in capable]
            if not successor(person, policy, params):  # nobody to hand over to: say so instead of failing
                dropped = [k for k in supported if k in HANDOVER_KINDS]
                plan.no_successor += [f"{account.system} {account.name}: {k.value}" for k in dropped]
                supported = [k for k in supported if k not in HANDOVER_KINDS]
            if person.legal_hold:
                plan.held += [f"{account.system} {account.name}: {k.value}" for k in supported if k in DELETIONS]
                supported = [k for k in supported if k not in DELETIONS]
            plan.unsupported += [(account, k) for k in kinds if k not in capable]
            ordered, notes = order_kinds(supported, cls.ordering, where=f"connector {account.system}")
            plan.actions += [
                Action(kind, account, {**handover_params(person, policy, kind, params), **params}) for kind in ordered
            ]
            plan.reordered += [f"{account.system} {account.name}: {note}" for note in notes]
            for step in policy.later:
                if (
                    step.connectors is None or account.system in step.connectors or cfg.type in step.connectors
                ) and step.action in capable:
                    plan.later.append((Action(step.action, account, params), step.delay))
            planned_kinds = {*kinds, *(step.action for step in policy.later)} & capable
            plan.destructive |= destructive_steps(self.connector(account.system), account, planned_kinds)
        planned = [*plan.actions, *(a for a, _ in plan.later)]
        plan.policy = policy = with_manual_tasks(policy, planned, person, self.connector)
        plan.tasks = not_before(self.checklist(person, policy, now), now, self.config.tasks)
        return bulk_plan(self, plan) if bulk else plan

    def checklist(self, person: Person, policy: Policy, termination: datetime) -> list[Any]:
        """The checklist tasks ``policy`` asks for ``person``, with due dates from ``termination``."""
        return checklist_for(self.config, policy, person, termination)

    # -- cases --------------------------------------------------------------------

    def open_case(
        self,
        plan: Plan,
        *,
        trigger: str = "cli",
        reason: str = "",
        termination_at: datetime | None = None,
        source_event: str | None = None,
    ) -> str:
        """Store the case with its actions and follow-ups, and record that it opened."""
        busy = self.store.find_cases(statuses=[CaseStatus.RUNNING.value], person_id=plan.person.id, limit=1)
        if busy:
            raise OffboardError(f"case {busy[0]['id']} for {plan.person.id} is already running; resume it instead")
        now = self.clock()
        case_id = new_id()
        row = dict(
            id=case_id,
            person_id=plan.person.id,
            person=dumps(plan.person.to_dict()),
            status=CaseStatus.RUNNING.value,
            trigger=trigger,
            policy=plan.policy.name,
            reason=reason,
            detail=_errors_detail(plan.errors),
            created_at=now,
            updated_at=now,
            termination_at=termination_at or now,
            source_event=source_event,
        )
        action_rows = [
            dict(
                case_id=case_id,
                position=i,
                system=a.account.system,
                account_id=a.account.id,
                account=dumps(a.account.to_dict()),
                kind=a.kind.value,
                params=dumps(dict(a.params)),
                status=ActionStatus.PENDING.value,
                attempts=0,
            )
            for i, a in enumerate(plan.actions)
        ]
        later = [
            dict(case_id=case_id, action=dumps(a.to_dict()), due_at=now + delay, status=FollowUpStatus.SCHEDULED.value)
            for a, delay in plan.later
        ]
        tasks = plan.tasks
        if plan.as_of is not None and last_day(plan.person, termination_at or now) != last_day(plan.person, plan.as_of):
            tasks = self.checklist(plan.person, plan.policy, termination_at or now)  # due dates count from another day
        tasks = not_before(tasks, now, self.config.tasks)  # none due sooner than tasks.min_notice after opening
        enqueue = self.dispatcher.enqueuer(case_id, action_rows) if self.dispatcher else None
        # Leased in the insert's transaction (no window for a resume) when this process runs the case;
        # in distributed execution the workers run it and the jobs are its owners, not the opener.
        lease = self.leases.on_insert(case_id) if enqueue is None else None

        def also(conn: Any) -> None:
            if lease is not None:
                lease(conn)
            if enqueue is not None:
                enqueue(conn)

        try:
            self.store.insert_case(row, action_rows, later, also=also, task_rows=task_rows(case_id, tasks, now))
        except CaseConflict:
            raise OffboardError(f"another case for {plan.person.id} is already running; resume it instead") from None
        self.record(
            "case_opened",
            case_id,
            {
                "case": case_id,
                "person": {
                    "id": plan.person.id,
                    "employee_id": plan.person.employee_id,
                    "timezone": plan.person.timezone,
                },
                "trigger": trigger,
                "policy": plan.policy.name,
                "reason": reason,
                "dry_run": False,
                "termination_at": _iso(termination_at or now),
                "plan": [
                    {
                        "system": a.account.system,
                        "account": {"id": a.account.id, "name": a.account.name},
                        "kind": a.kind.value,
                    }
                    for a in plan.actions
                ],
                "protected": [
                    {"system": a.system, "account": {"id": a.id, "name": a.name}, "reason": r}
                    for a, r in plan.protected
                ],
                "discovery_errors": plan.errors,
                **({"covered": plan.to_dict()["covered"]} if plan.covered else {}),
                **({"legal_hold": plan.person.legal_hold} if plan.person.legal_hold else {}),
                **({"recent_setups": plan.recent} if plan.recent else {}),
                **({"tasks": [t.to_entry() for t in tasks]} if tasks else {}),
            },
        )
        return case_id

    def revoke(
        self,
        ref: str | Person,
        *,
        policy: str | None = None,
        trigger: str = "cli",
        reason: str = "",
        confirm: Callable[[Plan], bool] | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
        hold: str | None = None,
    ) -> CaseResult | None:
        """Plan, confirm, open and run a case for one person; None when ``confirm`` turns the plan down.

        Every enabled connector is built first, so a configuration error surfaces before any write.
        ``progress`` hears of each action as it ends. ``hold`` puts the case under that legal hold.
        """
        self.check_connectors()
        if hold is not None:
            if not hold.strip():
                raise OffboardError("a legal hold needs a name (e.g. the matter it belongs to)")
            ref = replace(ref if isinstance(ref, Person) else self.resolve(ref), legal_hold=hold.strip())
        plan = self.plan(ref, policy)
        if confirm is not None and not confirm(plan):
            return None
        case_id = self.open_case(plan, trigger=trigger, reason=reason)
        return self.run_cases([case_id], progress)[0]

    def latest_cases(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest cases, newest first."""
        return self.store.find_cases(limit=limit)

    def find_case(self, ref: str) -> dict[str, Any] | None:
        """The case ``ref`` names (its id, or a part of it that only one case has), or None."""
        return self.store.case_by_prefix(ref)

    def run_cases(
        self, case_ids: list[str], progress: Callable[[dict[str, Any]], None] | None = None
    ) -> list[CaseResult]:
        """Run the unfinished actions of several cases, in parallel across systems and people."""
        if self.dispatcher is not None:  # workers run them; wait for the outcome
            return self.dispatcher.wait(self, case_ids, progress)
        chains: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        persons: dict[str, str] = {}
        for case_id in case_ids:
            case = self._case(case_id)
            persons[case_id] = case["person_id"]
            for row in self.store.actions(case_id):
                chains[(case_id, row["system"], row["account_id"])].append(row)
        left: defaultdict[str, int] = defaultdict(int)
        for case_id, _, _ in chains:
            left[case_id] += 1
        results: dict[str, CaseResult] = {}
        lock = threading.Lock()

        def run(case_id: str, rows: list[dict[str, Any]]) -> None:
            self._actions.run_chain(case_id, persons[case_id], rows, progress)
            with lock:
                left[case_id] -= 1
                last = left[case_id] == 0
            if last:  # close each case as soon as its own work is done, not at the end of the batch
                results[case_id] = self.close_case(case_id, seal=False)

        # One queue per system, served by as many threads as the system's concurrency cap:
        # a slow or rate-limited system never holds threads another system could use.
        if len(case_ids) > 1:  # a bulk run: everyone's access is cut on a system before its cleanup starts
            self.last_timing = run_bulk(self, chains, persons, results, progress)
        else:
            futures = [self._system_pool(key[1]).submit(run, key[0], rows) for key, rows in chains.items()]
            for future in futures:
                future.result()
        for case_id in case_ids:
            if case_id not in results:  # a case with no actions (everything protected or undiscoverable)
                results[case_id] = self.close_case(case_id, seal=False)
        self.record.seal_soon()
        return [results[case_id] for case_id in case_ids]

    def _system_pool(self, instance: str) -> ThreadPoolExecutor:
        try:
            self.connector(instance)  # built (and its settings checked) before any thread is spent on it
        except ConnectorError:  # its set-up kept failing past the budget: each chain fails with the reason
            pass
        with self._lock:
            pool = self._system_pools.get(instance)
            if pool is None:
                # More threads than the cap: a chain waiting out a backoff, or a request that stalled, holds a
                # thread, not one of the cap's slots (``call``, ``_stalled``), so a failing request does not idle
                # the system for everyone. Twenty per slot: a bulk run gives each account's cleanup chain a
                # thread, and with eight per slot Google's 80 threads held 200 chains, each sleeping its backoffs
                # and hangs in turn (``benchmarks/bench_faults.py``: its cleanup took 84 s instead of 33 s).
                # Threads start only as work arrives: a single case starts a few.
                pool = self._system_pools[instance] = ThreadPoolExecutor(
                    max_workers=self._pool_threads(instance), thread_name_prefix=f"offboard-{instance}"
                )
            return pool

    def _pool_threads(self, instance: str) -> int:
        """Threads of a system's pool (``_system_pool``, and a bulk run's early cleanup): ``THREADS_PER_SLOT``
        per slot of its concurrency cap."""
        return concurrency_cap(self, instance) * THREADS_PER_SLOT

    def run_chain_job(
        self,
        case_id: str,
        system: str,
        account_id: str,
        phase: str = "all",
        critical: frozenset[ActionKind] = frozenset(),
    ) -> None:
        """Run one account's actions in one case (a worker's job; ``phase`` "critical" or "cleanup": that part of
        the chain, split by the ``critical`` kinds), closing the case if it was the last."""
        case = self.store.case(case_id)
        if case is None or case["status"] in CaseStatus.FINAL:
            return
        rows = [r for r in self.store.actions(case_id) if r["system"] == system and r["account_id"] == account_id]
        if phase != "all":
            rows = split(rows, critical)[0 if phase == "critical" else 1]
        self._actions.run_chain(case_id, case["person_id"], rows, None)
        if self.store.claim_close(case_id):
            self.close_case(case_id)

    def close_case(
        self, case_id: str, seal: bool = True, gate: Gate | None = None, checked: dict[str, Any] | None = None
    ) -> CaseResult:
        """Decide ``complete`` or ``incomplete`` from the actions and record the close (``_close.close_case``)."""
        return close_case(self, case_id, seal, gate, checked)

    def result(self, case_id: str) -> CaseResult:
        case = self._case(case_id)
        return CaseResult(
            case_id,
            case["person_id"],
            CaseStatus(case["status"]),
            self.store.actions(case_id),
            case["detail"],
            task_counts(self.store, case_id),
        )

    def close_stragglers(self, older_than: float = 0.0) -> list[CaseResult]:
        """Close cases whose work is done but whose close was interrupted (a killed worker)."""
        results = []
        cutoff = self.clock() - timedelta(seconds=older_than)
        for case in self.store.find_cases(statuses=[CaseStatus.CLOSING], limit=10_000):
            if case["updated_at"] <= cutoff and self.leases.take(case["id"]) is None:
                results.append(self.close_case(case["id"]))
        for case in self.store.find_cases(statuses=[CaseStatus.RUNNING.value], limit=10_000):
            if self.leases.take(case["id"]) is not None:  # a live process runs it and will close it
                continue
            if self.store.claim_close(case["id"]):
                results.append(self.close_case(case["id"]))
            else:
                self.leases.give_back(case["id"])
        return results

    def resume(
        self,
        progress: Callable[[dict[str, Any]], None] | None = None,
        left_alone: Callable[[str, str], None] | None = None,
    ) -> list[CaseResult]:
        """Finish every case left running (after a crash or a kill) whose lease this engine can take.

        A case another live process still holds is left alone; ``left_alone(case_id, why)`` hears of it.
        """
        running = []
        for case in self.store.find_cases(statuses=[CaseStatus.RUNNING, CaseStatus.CLOSING], limit=10_000):
            holder = self.leases.take(case["id"])
            if holder is None:
                running.append(case["id"])
            elif left_alone is not None:
                left_alone(case["id"], f"owned by {describe(holder, self.store.leases.now())}")
        for case_id in running:
            self.record("recovery", case_id, {"case": case_id, "note": "resuming a case interrupted before it closed"})
        results = self.run_cases(running, progress) if running else []
        return results + self.run_due_followups(progress) + self.retry_owed(progress)

    def retry_owed(self, progress: Callable[[dict[str, Any]], None] | None = None, **kw: Any) -> list[CaseResult]:
        """Retry owed (failed) actions whose backoff has passed; escalate overdue ones (``_owed.retry_owed``)."""
        from ._owed import retry_owed

        return retry_owed(self, progress, **kw)

    def check_recent(self, window: timedelta) -> list[Any]:
        """The residual-access check over everyone with a case opened within ``window`` (``_check.check_recent``)."""
        from ._check import check_recent

        return check_recent(self, window)

    def run_due_followups(
        self, progress: Callable[[dict[str, Any]], None] | None = None, wait: bool = True
    ) -> list[CaseResult]:
        """Open and run cases for follow-up steps (staged deletions) that are due; ``wait=False`` only opens them."""
        due = self.store.due_followups(self.clock())
        by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in due:
            by_case[item["case_id"]].append(item)
        results = []
        for origin, items in by_case.items():
            case = self._case(origin)
            items = refuse_held(self, origin, case, items)
            if not items:
                continue
            person = Person.from_dict(json.loads(case["person"]))
            plan = Plan(
                person,
                self.policies.get(case["policy"]) or self.policy_for(person),
                [Action.from_dict(json.loads(i["action"])) for i in items],
            )
            case_id = self.open_case(plan, trigger="followup", reason=f"follow-up of {origin}")
            for item in items:
                self.store.update_followup(item["id"], status=FollowUpStatus.DONE.value, done_case=case_id)
            if wait:
                results += self.run_cases([case_id], progress)
        return results

    def undo(self, case_id: str, actor: str = "") -> dict[str, list[str]]:
        """Restore what is reversible in ``case_id``; say what is not."""
        return undo_case(self, case_id, actor)


def _errors_detail(errors: dict[str, str]) -> str:
    return "\n".join(f"{system}: discovery failed: {error}" for system, error in errors.items())
