"""``store.leases``: which process runs which case, while its heartbeat lasts.

A lease is one row of ``case_leases`` per case: the owner (one id per engine), its host and
pid, and when it expires. Every statement writes first (update, else insert), so two
processes racing for a case, on SQLite or on PostgreSQL from different machines, cannot
both win: the update matches only a lease that is free to take, and the insert fails on the
primary key when someone else holds the row.

Every time is read from one clock: the database's on PostgreSQL (``clock_timestamp()``), where the
processes run on machines whose clocks may differ by minutes, so a host whose clock runs fast can
never see a live lease as expired; this host's clock on SQLite, which one machine uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ._rows import row_dict
from .schema import case_leases

__all__ = ["Leases"]


class Leases:
    """The case leases of a store (``store.leases``)."""

    def __init__(self, store: Any):
        self._store = store
        self._shared = store._db.dialect.name == "postgresql"

    def now(self, conn: sa.Connection | None = None) -> datetime:
        """The clock leases are measured by (the database's on PostgreSQL, shared by every machine)."""
        if not self._shared:
            return _host_now()
        if conn is not None:
            return conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
        with self._store._reading() as c:
            return c.execute(sa.select(sa.func.clock_timestamp())).scalar_one()

    def acquire(
        self,
        case_id: str,
        owner: str,
        host: str,
        pid: int,
        ttl: float,
        dead: Callable[[dict[str, Any]], bool] = lambda row: False,
        conn: sa.Connection | None = None,
    ) -> dict[str, Any] | None:
        """Take the lease of ``case_id`` for ``owner``; None when taken, else the row of the live holder.

        It is taken when free, expired, already ``owner``'s, or held by a process ``dead`` says
        is gone (a killed process on this host). ``conn`` joins a transaction (a case's insert).
        """
        now = self.now(conn)
        values = dict(
            owner=owner, host=host, pid=pid, acquired_at=now, heartbeat_at=now, expires_at=now + timedelta(seconds=ttl)
        )
        if conn is not None:
            conn.execute(case_leases.insert().values(case_id=case_id, **values))
            return None
        free = sa.or_(case_leases.c.owner == owner, case_leases.c.expires_at <= now)
        with self._store._writing() as c:
            if c.execute(case_leases.update().where(case_leases.c.case_id == case_id, free).values(**values)).rowcount:
                return None
        try:
            with self._store._writing() as c:
                c.execute(case_leases.insert().values(case_id=case_id, **values))
                return None
        except sa.exc.IntegrityError:
            pass
        holder = self.holder(case_id)
        if holder is None:  # released between our two statements: try once more
            return self.acquire(case_id, owner, host, pid, ttl, dead)
        if holder["owner"] != owner and holder["expires_at"] > now and not dead(holder):
            return holder
        same = (
            case_leases.c.case_id == case_id,
            case_leases.c.owner == holder["owner"],
            case_leases.c.heartbeat_at == holder["heartbeat_at"],
        )
        with self._store._writing() as c:  # compare and swap: only if nobody renewed or took it meanwhile
            if c.execute(case_leases.update().where(*same).values(**values)).rowcount:
                return None
        return self.holder(case_id) or holder

    def renew(self, owner: str, ttl: float) -> set[str]:
        """Push back the expiry of every lease ``owner`` holds; the ids of the cases it still holds."""
        now = self.now()
        with self._store._writing() as c:
            c.execute(
                case_leases.update()
                .where(case_leases.c.owner == owner)
                .values(heartbeat_at=now, expires_at=now + timedelta(seconds=ttl))
            )
            return set(c.execute(sa.select(case_leases.c.case_id).where(case_leases.c.owner == owner)).scalars())

    def release(self, case_id: str, owner: str | None = None) -> None:
        """Drop the lease of ``case_id`` (only ``owner``'s, when given)."""
        where = [case_leases.c.case_id == case_id]
        if owner is not None:
            where.append(case_leases.c.owner == owner)
        with self._store._writing() as c:
            c.execute(case_leases.delete().where(*where))

    def holder(self, case_id: str) -> dict[str, Any] | None:
        with self._store._reading() as c:
            row = c.execute(sa.select(case_leases).where(case_leases.c.case_id == case_id)).mappings().first()
        return row_dict(row) if row else None

    def holders(self, case_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        with self._store._reading() as c:
            rows = c.execute(sa.select(case_leases).where(case_leases.c.case_id.in_(list(case_ids)))).mappings()
            return {r["case_id"]: row_dict(r) for r in rows}


def _host_now() -> datetime:
    return datetime.now(UTC)
