"""The HR events the server received, and the webhook deliveries it has seen (redeliveries are duplicates)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..models import HREventStatus
from ._rows import row_dict as _row
from .schema import hr_deliveries, hr_events

__all__ = ["HREvents"]

#: One received event: its row (without status and counters) and the delivery id it came with.
Item = tuple[dict[str, Any], str | None]
#: What became of it: (outcome, key, status, received_at); outcome is accepted, duplicate, conflict or replayed
#: (a known delivery id carrying another event or body).
Outcome = tuple[str, str, str, datetime | None]


class HREvents:
    """``store.hr_events``: stored exactly once by key; a delivery id that comes back with other content is refused."""

    def __init__(self, store: Any):
        self._store = store

    def accept(self, items: list[Item]) -> list[Outcome]:
        """Store new events in one transaction; a race with another process is settled one event at a time."""
        store = self._store
        try:
            with store._writing() as conn:
                return _write(conn, items)
        except sa.exc.IntegrityError:  # another process raced us: settle each on its own
            out = []
            for item in items:
                try:
                    with store._writing() as conn:
                        out += _write(conn, [item])
                except sa.exc.IntegrityError:
                    with store._reading() as conn:
                        out += _write(conn, [item], dry=True)
            return out

    def _find(self, *where: Any, order: Any = None, limit: int = 1000) -> list[dict[str, Any]]:
        query = sa.select(hr_events).where(*where).order_by(order if order is not None else hr_events.c.seq)
        with self._store._reading() as conn:
            return [_row(r) for r in conn.execute(query.limit(limit)).mappings()]

    def new(self, max_attempts: int) -> list[dict[str, Any]]:
        """Accepted events not yet handled (nor given up on), in arrival order."""
        return self._find(hr_events.c.status == HREventStatus.ACCEPTED.value, hr_events.c.attempts < max_attempts)

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """Scheduled terminations whose time has come, earliest first."""
        return self._find(
            hr_events.c.status == HREventStatus.SCHEDULED.value, hr_events.c.due_at <= now, order=hr_events.c.due_at
        )

    def opened(self) -> list[dict[str, Any]]:
        """Events whose case is open."""
        return self._find(hr_events.c.status == HREventStatus.OPENED.value)

    def scheduled_for(self, person_id: str) -> list[dict[str, Any]]:
        """The person's scheduled events, in arrival order."""
        return self._find(hr_events.c.status == HREventStatus.SCHEDULED.value, hr_events.c.person_id == person_id)

    def get(self, seq: int) -> dict[str, Any] | None:
        found = self._find(hr_events.c.seq == seq)
        return found[0] if found else None

    def update(self, seq: int, **values: Any) -> None:
        with self._store._writing() as conn:
            conn.execute(hr_events.update().where(hr_events.c.seq == seq).values(**values))

    def prune_deliveries(self, before: datetime) -> None:
        """Forget delivery ids received before ``before`` (the replay window has passed)."""
        with self._store._writing() as conn:
            conn.execute(hr_deliveries.delete().where(hr_deliveries.c.received_at < before))

    def latest(self, *, statuses: Iterable[str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Received events, newest first."""
        where = [hr_events.c.status.in_([str(s) for s in statuses])] if statuses is not None else []
        return self._find(*where, order=hr_events.c.seq.desc(), limit=limit)

    def counts_by_status(self) -> dict[str, int]:
        with self._store._reading() as conn:
            return dict(conn.execute(sa.select(hr_events.c.status, sa.func.count()).group_by(hr_events.c.status)).all())

    def waiting(self) -> int:
        """How many accepted events are not handled yet."""
        query = (
            sa.select(sa.func.count()).select_from(hr_events).where(hr_events.c.status == HREventStatus.ACCEPTED.value)
        )
        with self._store._reading() as conn:
            return conn.execute(query).scalar_one()


def _write(conn: sa.Connection, items: list[Item], dry: bool = False) -> list[Outcome]:
    keys = list({row["key"] for row, _ in items})
    deliveries = [d for _, d in items if d]
    known = {
        r.key: (r.body_hash, r.status)
        for r in conn.execute(
            sa.select(hr_events.c.key, hr_events.c.body_hash, hr_events.c.status).where(hr_events.c.key.in_(keys))
        )
    }
    seen: dict[str, str] = (  # delivery id -> the event key it carried
        {
            r.delivery_id: r.event_key
            for r in conn.execute(
                sa.select(hr_deliveries.c.delivery_id, hr_deliveries.c.event_key).where(
                    hr_deliveries.c.delivery_id.in_(deliveries)
                )
            )
        }
        if deliveries
        else {}
    )
    accepted = HREventStatus.ACCEPTED.value
    results: list[Outcome] = []
    new_events, new_deliveries = [], []
    for row, delivery in items:
        key, received = row["key"], row["received_at"]
        if delivery and delivery in seen:  # a redelivery: the same message again is a duplicate, anything else not
            same = seen[delivery] == key and key in known and known[key][0] == row["body_hash"]
            status = known[key][1] if key in known else "unknown"
            results.append(("duplicate" if same else "replayed", key, status, None))
            continue
        if delivery:
            seen[delivery] = key
            new_deliveries.append(dict(delivery_id=delivery, event_key=key, received_at=received))
        if key in known:
            body_hash, status = known[key]
            results.append(("duplicate" if body_hash == row["body_hash"] else "conflict", key, status, None))
            continue
        known[key] = (row["body_hash"], accepted)  # a second copy in this batch is a duplicate
        new_events.append({**row, "status": accepted, "detail": "", "attempts": 0})
        results.append(("accepted", key, accepted, received))
    if not dry:
        if new_events:
            conn.execute(hr_events.insert(), new_events)
        if new_deliveries:
            conn.execute(hr_deliveries.insert(), new_deliveries)
    return results
