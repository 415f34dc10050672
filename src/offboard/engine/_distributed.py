"""Scale-out: PostgreSQL and procrastinate workers share the work.

With ``execution: distributed`` and a PostgreSQL ``store``, the engine does not run
actions itself. Opening a case enqueues procrastinate jobs per (case, system, account)
in the same transaction that writes the case, so a case is never stored without its
jobs or the other way round: one for the chain's critical part (what cuts access, at a
higher priority, so workers take every queued one before any cleanup) and one for its
cleanup part, sharing a lock so that the cleanup starts only after the critical part
ended (``_schedule`` splits the chain as it does for local bulk runs). Any number of ``offboard worker`` processes
on any number of machines take the jobs; the last job of a case closes it (one worker
wins the claim). Rate limits are shared through PostgreSQL (``SharedBucket``), so they
hold in aggregate however many workers run. A worker killed mid-job leaves its job
``doing``; another worker finds it stalled (no heartbeat) and runs it again, which is
safe because an action is read back before it is re-applied.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from ..errors import ConfigError, OffboardError
from ..models import ActionKind, ActionStatus
from ._connectors import connector_class
from ._schedule import critical_kinds, split

__all__ = ["Dispatcher", "SharedBucket", "attach", "make_app", "retry_stalled_jobs"]

log = structlog.get_logger("offboard.distributed")
QUEUE = "offboard"
CHAIN_TASK = "offboard.run_chain"
TICK_TASK = "offboard.tick"


def attach(engine: Any) -> None:
    """Switch ``engine`` to distributed execution (enqueue and wait; shared rate limits)."""
    if engine.store.is_sqlite:
        raise ConfigError("execution: distributed needs `store:` to be a PostgreSQL URL", where="execution")
    engine.dispatcher = Dispatcher(engine.store, lambda system: _critical(engine, system))
    engine.bucket_factory = lambda system, rate, burst, clock=None: SharedBucket(engine.store, system, rate, burst)
    if engine.record.audit is not None:  # one log for all workers: entries sequenced through PostgreSQL
        from ..audit import use_database

        use_database(engine.record.audit, engine.store.audit_rows())


def _critical(engine: Any, system: str) -> frozenset[ActionKind]:
    """The kinds of ``system`` that run in the critical phase (its connector's ordering included)."""
    try:
        ordering = connector_class(engine, system).ordering
    except OffboardError:  # no such connector any more: its chains fail when run, naming it
        ordering = ()
    return critical_kinds(ordering)


class Dispatcher:
    """Enqueues a case's jobs inside the case's own transaction, and waits for cases to close."""

    poll = 0.2

    def __init__(self, store: Any, critical_of: Callable[[str], frozenset[ActionKind]] = lambda system: frozenset()):
        self.store, self.critical_of = store, critical_of

    def enqueuer(self, case_id: str, action_rows: list[dict[str, Any]]) -> Callable[[Any], None]:
        """Per (system, account) of the case, a critical job (priority 1) and a cleanup job (priority 0) for
        the parts the chain has, sharing a lock; written in the case's own transaction."""
        chains: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in action_rows:
            chains.setdefault((row["system"], row["account_id"]), []).append(row)
        jobs = []
        for (system, account_id), rows in chains.items():
            parts = split(rows, self.critical_of(system))
            for phase, part, priority in zip(("critical", "cleanup"), parts, (1, 0), strict=True):
                if part:
                    chain = {"case_id": case_id, "system": system, "account_id": account_id, "phase": phase}
                    jobs.append({**chain, "priority": priority, "lock": f"offboard:{case_id}:{system}:{account_id}"})
        return self.store.jobs.deferrer(QUEUE, CHAIN_TASK, jobs)

    def wait(self, engine: Any, case_ids: list[str], progress: Callable[[dict[str, Any]], None] | None) -> list[Any]:
        reported: set[int] = set()
        open_ids = set(case_ids)
        while open_ids:
            for case_id in list(open_ids):
                if progress:
                    for row in engine.store.actions(case_id):
                        if row["id"] not in reported and row["status"] in ActionStatus.FINAL | {ActionStatus.WAITING}:
                            reported.add(row["id"])
                            progress(
                                {
                                    "case": case_id,
                                    "system": row["system"],
                                    "account": json.loads(row["account"])["name"],
                                    "kind": row["kind"],
                                    "status": row["status"],
                                    "error": row["error"],
                                }
                            )
            open_ids = engine.store.unfinished(open_ids)  # one query per poll, not one per case
            if open_ids:
                time.sleep(self.poll)
        return [engine.result(case_id) for case_id in case_ids]


class SharedBucket:
    """A token bucket kept in PostgreSQL (GCRA), shared by every worker on every machine."""

    def __init__(self, store: Any, system: str, rate: float | None, burst: int | None = None):
        self.limits, self.system, self.rate = store.rate_limits, system, rate
        self.burst = max(1, burst or (int(rate) if rate and rate >= 1 else 1))
        self.waited = 0.0
        if rate is not None:
            self.limits.ensure(system)

    def _try(self) -> float:
        """Take a token if one is free; else return how long to wait."""
        return self.limits.take(self.system, 1.0 / self.rate if self.rate else 0.0, self.burst)

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        total = 0.0
        if self.rate is None:
            return total
        while (delay := self._try()) > 0:
            total += delay
            self.waited += delay
            sleep(delay)
        return total

    def pause(self, seconds: float) -> None:
        self.limits.pause(self.system, seconds)


def retry_stalled_jobs(store: Any, stalled_after: float = 30.0) -> int:
    """Put back jobs whose worker stopped sending heartbeats (killed, crashed, cut off)."""
    count = store.jobs.retry_stalled(stalled_after)
    if count:
        log.warning("re-queued stalled jobs", jobs=count)
    return count


def make_app(engine_factory: Callable[[], Any], stalled_after: float = 30.0) -> Any:
    """The procrastinate app with offboard's tasks; ``engine_factory`` gives this worker's engine."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=engine_factory().store.jobs.conninfo()))
    lock = threading.Lock()

    @app.task(name=CHAIN_TASK, queue=QUEUE)
    def run_chain(case_id: str, system: str, account_id: str, phase: str = "all") -> None:
        engine = engine_factory()
        engine.run_chain_job(case_id, system, account_id, phase, _critical(engine, system))

    @app.periodic(cron="* * * * *", periodic_id="offboard-tick")
    @app.task(name=TICK_TASK, queue=QUEUE)
    def tick(timestamp: int) -> None:
        """Once a minute across all workers: re-queue stalled jobs, open due follow-ups."""
        engine = engine_factory()
        with lock:
            retry_stalled_jobs(engine.store, stalled_after)
            engine.run_due_followups(wait=False)
            engine.retry_owed(wait=False)  # owed actions whose backoff passed: their jobs are enqueued

    return app


def run_worker(
    engine_factory: Callable[[], Any], concurrency: int = 4, stalled_after: float = 30.0, heartbeat: float = 10.0
) -> None:
    """Run a worker until stopped; a side thread re-queues stalled jobs every few seconds."""
    app = make_app(engine_factory, stalled_after)
    stop = threading.Event()

    def janitor() -> None:
        while not stop.wait(max(1.0, stalled_after / 3)):
            try:
                retry_stalled_jobs(engine_factory().store, stalled_after)
                engine_factory().close_stragglers(older_than=stalled_after)
            except Exception as exc:  # the database may be briefly away; try again next round
                log.warning("stalled-job check failed", error=str(exc))

    thread = threading.Thread(target=janitor, name="offboard-janitor", daemon=True)
    thread.start()
    try:
        app.run_worker(
            queues=[QUEUE],
            concurrency=concurrency,
            name=f"offboard-{os.getpid()}",
            update_heartbeat_interval=heartbeat,
            stalled_worker_timeout=stalled_after,
            delete_jobs="successful",
        )
    finally:
        stop.set()
