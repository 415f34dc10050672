"""Distributed execution's tables on PostgreSQL: procrastinate's jobs and the shared rate limits."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..errors import ConfigError

__all__ = ["Jobs", "RateLimits"]


class Jobs:
    """``store.jobs``: procrastinate's job queue, written with its own SQL functions."""

    def __init__(self, store: Any):
        self._store = store

    def conninfo(self) -> str:
        """The libpq connection string of the store, for procrastinate's own connections."""
        url = self._store._db.url
        if not url.drivername.startswith("postgresql"):
            raise ConfigError(f"distributed execution needs a PostgreSQL store, not {url.drivername}", where="store")
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def deferrer(
        self, queue: str, task: str, jobs: list[dict[str, Any]], at: datetime | None = None
    ) -> Callable[[Any], None]:
        """What ``insert_case(also=...)`` calls to enqueue ``jobs`` (their arguments) in the case's transaction.

        A job's ``priority`` and ``lock`` keys, when present, are procrastinate's: workers take higher
        priorities first, and run the jobs sharing a lock one at a time, higher priority (then older) first."""

        def defer(conn: sa.Connection) -> None:
            if not jobs:
                return
            rows = [
                {
                    "args": json.dumps({k: v for k, v in a.items() if k not in ("priority", "lock")}),
                    "priority": int(a.get("priority", 0)),
                    "lock": a.get("lock"),
                }
                for a in jobs
            ]
            conn.execute(
                sa.text(
                    "select procrastinate_defer_jobs_v1(array(select row(:queue, :task, j.priority, j.lock, null, "
                    "j.args::jsonb, :at)::procrastinate_job_to_defer_v1 from json_to_recordset(cast(:jobs as json)) "
                    "as j(args text, priority int, lock text)))"
                ),
                {"queue": queue, "task": task, "at": at, "jobs": json.dumps(rows)},
            )

        return defer

    def retry_stalled(self, stalled_after: float) -> int:
        """Put back jobs whose worker sent no heartbeat for ``stalled_after`` seconds; returns how many."""
        with self._store._db.begin() as conn:
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
        return len(ids)


class RateLimits:
    """``store.rate_limits``: one GCRA state per system, shared by every worker (PostgreSQL)."""

    def __init__(self, store: Any):
        self._store = store

    def ensure(self, system: str) -> None:
        """Create the system's row if there is none."""
        with self._store._db.begin() as conn:
            conn.execute(
                sa.text("insert into rate_limits (system, tat, paused_until) values (:s, 0, 0) on conflict do nothing"),
                {"s": system},
            )

    def take(self, system: str, interval: float, burst: int) -> float:
        """Take a token if one is free (0.0); else how many seconds to wait. ``interval`` 0 only honours a pause."""
        with self._store._db.begin() as conn:
            now = conn.execute(sa.text("select extract(epoch from clock_timestamp())")).scalar_one()
            row = conn.execute(
                sa.text("select tat, paused_until from rate_limits where system = :s for update"), {"s": system}
            ).one()
            now = float(now)
            if row.paused_until > now:
                return row.paused_until - now
            if not interval:
                return 0.0
            new_tat = max(row.tat, now) + interval
            early = new_tat - now - burst * interval
            if early > 1e-6:  # epoch seconds near 2e9 carry ~1e-7 of rounding: do not wait for that
                return early
            conn.execute(sa.text("update rate_limits set tat = :t where system = :s"), {"t": new_tat, "s": system})
            return 0.0

    def pause(self, system: str, seconds: float) -> None:
        """Hold every worker's calls to ``system`` for ``seconds`` from now (never shortening a longer pause)."""
        with self._store._db.begin() as conn:
            conn.execute(
                sa.text(
                    "update rate_limits set paused_until = greatest(paused_until, extract(epoch "
                    "from clock_timestamp()) + :d) where system = :s"
                ),
                {"d": seconds, "s": system},
            )
