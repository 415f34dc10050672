"""Scale-out: PostgreSQL and procrastinate workers share the work.

With ``execution: distributed`` and a PostgreSQL ``store``, the engine does not run
actions itself. Opening a case enqueues one procrastinate job per (case, system,
account) in the same transaction that writes the case, so a case is never stored
without its jobs or the other way round. Any number of ``offboard worker`` processes
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
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog

from ..errors import ConfigError
from ..state._store import metadata

__all__ = ["Dispatcher", "SharedBucket", "attach", "make_app", "conninfo", "retry_stalled_jobs"]

log = structlog.get_logger("offboard.distributed")
QUEUE = "offboard"
CHAIN_TASK = "offboard.run_chain"
TICK_TASK = "offboard.tick"

rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("system", sa.String(100), primary_key=True),
    sa.Column("tat", sa.Float, nullable=False, default=0.0),  # GCRA: theoretical arrival time, epoch seconds
    sa.Column("paused_until", sa.Float, nullable=False, default=0.0),
)


def conninfo(url: str) -> str:
    """The libpq connection string for a SQLAlchemy PostgreSQL URL."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ConfigError(f"distributed execution needs a PostgreSQL store, not {parsed.drivername}", where="store")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def attach(engine: Any) -> None:
    """Switch ``engine`` to distributed execution (enqueue and wait; shared rate limits)."""
    if engine.store.is_sqlite:
        raise ConfigError("execution: distributed needs `store:` to be a PostgreSQL URL", where="execution")
    engine.dispatcher = Dispatcher()
    engine.bucket_factory = lambda system, rate, burst, clock=None: SharedBucket(
        engine.store.engine, system, rate, burst
    )
    if engine.record.audit is not None:  # one log for all workers: entries sequenced through PostgreSQL
        from ..audit import use_database

        use_database(engine.record.audit, engine.store.engine)


class Dispatcher:
    """Enqueues a case's jobs inside the case's own transaction, and waits for cases to close."""

    poll = 0.2

    def enqueuer(self, case_id: str, action_rows: list[dict[str, Any]]) -> Callable[[sa.Connection], None]:
        chains = list(dict.fromkeys((r["system"], r["account_id"]) for r in action_rows))

        def enqueue(conn: sa.Connection) -> None:
            defer_chains(conn, case_id, chains)

        return enqueue

    def wait(self, engine: Any, case_ids: list[str], progress: Callable[[dict[str, Any]], None] | None) -> list[Any]:
        reported: set[int] = set()
        open_ids = set(case_ids)
        while open_ids:
            for case_id in list(open_ids):
                if progress:
                    for row in engine.store.actions(case_id):
                        if row["id"] not in reported and row["status"] not in ("pending", "applying", "applied"):
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
            open_ids = _still_open(engine.store.engine, open_ids)  # one query per poll, not one per case
            if open_ids:
                time.sleep(self.poll)
        return [engine.result(case_id) for case_id in case_ids]


def _still_open(db: sa.Engine, case_ids: set[str]) -> set[str]:
    from ..state._store import cases

    query = sa.select(cases.c.id).where(cases.c.id.in_(list(case_ids)), cases.c.status.in_(("running", "closing")))
    with db.connect() as conn:
        return set(conn.execute(query).scalars())


def defer_chains(conn: sa.Connection, case_id: str, chains: list[tuple[str, str]], at: datetime | None = None) -> None:
    """Insert procrastinate jobs with its own SQL function, on our connection (same transaction)."""
    if not chains:
        return
    jobs = [
        {"args": json.dumps({"case_id": case_id, "system": system, "account_id": account_id})}
        for system, account_id in chains
    ]
    conn.execute(
        sa.text(
            "select procrastinate_defer_jobs_v1(array(select row(:queue, :task, 0, null, null, j.args::jsonb, :at)"
            "::procrastinate_job_to_defer_v1 from json_to_recordset(cast(:jobs as json)) as j(args text)))"
        ),
        {"queue": QUEUE, "task": CHAIN_TASK, "at": at, "jobs": json.dumps(jobs)},
    )


class SharedBucket:
    """A token bucket kept in PostgreSQL (GCRA), shared by every worker on every machine."""

    def __init__(self, db: sa.Engine, system: str, rate: float | None, burst: int | None = None):
        self.db, self.system, self.rate = db, system, rate
        self.burst = max(1, burst or (int(rate) if rate and rate >= 1 else 1))
        self.waited = 0.0
        if rate is not None:
            with db.begin() as conn:
                conn.execute(
                    sa.text(
                        "insert into rate_limits (system, tat, paused_until) values (:s, 0, 0) on conflict do nothing"
                    ),
                    {"s": system},
                )

    def _try(self) -> float:
        """Take a token if one is free; else return how long to wait."""
        interval = 1.0 / self.rate if self.rate else 0.0
        with self.db.begin() as conn:
            now = conn.execute(sa.text("select extract(epoch from clock_timestamp())")).scalar_one()
            row = conn.execute(
                sa.text("select tat, paused_until from rate_limits where system = :s for update"), {"s": self.system}
            ).one()
            now = float(now)
            if row.paused_until > now:
                return row.paused_until - now
            if not self.rate:
                return 0.0
            new_tat = max(row.tat, now) + interval
            early = new_tat - now - self.burst * interval
            if early > 1e-6:  # epoch seconds near 2e9 carry ~1e-7 of rounding: do not wait for that
                return early
            conn.execute(sa.text("update rate_limits set tat = :t where system = :s"), {"t": new_tat, "s": self.system})
            return 0.0

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
        with self.db.begin() as conn:
            conn.execute(
                sa.text(
                    "update rate_limits set paused_until = greatest(paused_until, extract(epoch "
                    "from clock_timestamp()) + :d) where system = :s"
                ),
                {"d": seconds, "s": self.system},
            )


def retry_stalled_jobs(db: sa.Engine, stalled_after: float = 30.0) -> int:
    """Put back jobs whose worker stopped sending heartbeats (killed, crashed, cut off)."""
    with db.begin() as conn:
        ids = (
            conn.execute(
                sa.text(
                    "select j.id from procrastinate_jobs j left join procrastinate_workers w on w.id = j.worker_id "
                    "where j.status = 'doing' and (w.id is null or w.last_heartbeat < now() - "
                    "make_interval(secs => :s)) for update of j skip locked"
                ),
                {"s": stalled_after},
            )
            .scalars()
            .all()
        )
        for job_id in ids:
            conn.execute(sa.text("select procrastinate_retry_job_v2(:id, now(), null, null, null)"), {"id": job_id})
    if ids:
        log.warning("re-queued stalled jobs", jobs=len(ids))
    return len(ids)


def make_app(engine_factory: Callable[[], Any], stalled_after: float = 30.0) -> Any:
    """The procrastinate app with offboard's tasks; ``engine_factory`` gives this worker's engine."""
    import procrastinate

    config_store = engine_factory().config.store
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(config_store)))
    lock = threading.Lock()

    @app.task(name=CHAIN_TASK, queue=QUEUE)
    def run_chain(case_id: str, system: str, account_id: str) -> None:
        engine_factory().run_chain_job(case_id, system, account_id)

    @app.periodic(cron="* * * * *", periodic_id="offboard-tick")
    @app.task(name=TICK_TASK, queue=QUEUE)
    def tick(timestamp: int) -> None:
        """Once a minute across all workers: re-queue stalled jobs, open due follow-ups."""
        engine = engine_factory()
        with lock:
            retry_stalled_jobs(engine.store.engine, stalled_after)
            engine.run_due_followups(wait=False)

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
                retry_stalled_jobs(engine_factory().store.engine, stalled_after)
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
