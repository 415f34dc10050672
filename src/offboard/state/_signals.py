"""``store.signals``: the Shared Signals tables (streams, subjects, the SET outbox, the feed cursor).

``offboard.signals`` keeps the logic (what a stream is owed, signing, delivery); this module
holds its SQL. The outbox is filled from the ``events`` table in one transaction with the
cursor that says how far it was read, so a crash never loses or doubles a SET; a (stream,
cause) pair is unique, so two servers feeding at once still queue each SET once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._rows import row_dict
from .schema import actions, events, ssf_cursor, ssf_outbox, ssf_streams, ssf_subjects

__all__ = ["Signals", "PENDING", "DELIVERED", "FAILED"]

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
CURSOR = "events"


class Signals:
    """The Shared Signals tables of a store."""

    def __init__(self, store: Any):
        self._store = store

    # -- streams ----------------------------------------------------------------------

    def create_stream(self, stream_id: str, receiver: str, config: dict[str, Any], now: datetime) -> None:
        with self._store._writing() as c:
            c.execute(
                ssf_streams.insert().values(
                    stream_id=stream_id,
                    receiver=receiver,
                    config=json.dumps(config, sort_keys=True),
                    status="enabled",
                    created_at=now,
                    updated_at=now,
                )
            )

    def streams(self, receiver: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(ssf_streams).order_by(ssf_streams.c.created_at, ssf_streams.c.stream_id)
        if receiver is not None:
            query = query.where(ssf_streams.c.receiver == receiver)
        with self._store._reading() as c:
            return [_stream(r) for r in c.execute(query).mappings()]

    def stream(self, stream_id: str) -> dict[str, Any] | None:
        with self._store._reading() as c:
            row = c.execute(sa.select(ssf_streams).where(ssf_streams.c.stream_id == stream_id)).mappings().first()
        return _stream(row) if row else None

    def update_stream(self, stream_id: str, now: datetime, **values: Any) -> None:
        if "config" in values:
            values["config"] = json.dumps(values["config"], sort_keys=True)
        with self._store._writing() as c:
            c.execute(ssf_streams.update().where(ssf_streams.c.stream_id == stream_id).values(updated_at=now, **values))

    def delete_stream(self, stream_id: str) -> None:
        """The stream, its subjects and whatever it still owed."""
        with self._store._writing() as c:
            c.execute(ssf_outbox.delete().where(ssf_outbox.c.stream_id == stream_id))
            c.execute(ssf_subjects.delete().where(ssf_subjects.c.stream_id == stream_id))
            c.execute(ssf_streams.delete().where(ssf_streams.c.stream_id == stream_id))

    # -- subjects ---------------------------------------------------------------------

    def add_subject(self, stream_id: str, subject: str) -> None:
        """Add a canonical subject; adding it twice is harmless."""
        try:
            with self._store._writing() as c:
                c.execute(ssf_subjects.insert().values(stream_id=stream_id, subject=subject))
        except sa.exc.IntegrityError:
            pass

    def remove_subject(self, stream_id: str, subject: str) -> bool:
        with self._store._writing() as c:
            done = c.execute(
                ssf_subjects.delete().where(ssf_subjects.c.stream_id == stream_id, ssf_subjects.c.subject == subject)
            )
        return bool(done.rowcount)

    def subjects(self) -> dict[str, list[str]]:
        """Every stream's subjects (canonical JSON), by stream id."""
        out: dict[str, list[str]] = {}
        with self._store._reading() as c:
            for row in c.execute(sa.select(ssf_subjects).order_by(ssf_subjects.c.id)).mappings():
                out.setdefault(row["stream_id"], []).append(row["subject"])
        return out

    # -- the feed: engine events in, outbox rows out -------------------------------------

    def cursor(self) -> int | None:
        with self._store._reading() as c:
            return c.execute(sa.select(ssf_cursor.c.position).where(ssf_cursor.c.name == CURSOR)).scalar()

    def start_cursor(self) -> int:
        """The cursor, set to the newest engine event when there is none yet (history is not replayed)."""
        position = self.cursor()
        if position is not None:
            return int(position)
        with self._store._writing() as c:
            position = c.execute(sa.select(ssf_cursor.c.position).where(ssf_cursor.c.name == CURSOR)).scalar()
            if position is None:
                position = c.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar() or 0
                c.execute(ssf_cursor.insert().values(name=CURSOR, position=position))
        return int(position)

    def events_after(self, position: int, types: Iterable[str], limit: int = 500) -> list[dict[str, Any]]:
        """Engine events of ``types`` after ``position``, oldest first (``payload`` decoded)."""
        query = (
            sa.select(events)
            .where(events.c.id > position, events.c.type.in_(list(types)))
            .order_by(events.c.id)
            .limit(limit)
        )
        with self._store._reading() as c:
            rows = [row_dict(r) for r in c.execute(query).mappings()]
        for row in rows:
            row["payload"] = json.loads(row["payload"])
        return rows

    def last_event_id(self) -> int:
        with self._store._reading() as c:
            return int(c.execute(sa.select(sa.func.coalesce(sa.func.max(events.c.id), 0))).scalar() or 0)

    def enqueue(self, rows: list[dict[str, Any]], position: int) -> list[dict[str, Any]]:
        """Queue ``rows`` (skipping any already queued) and move the cursor to ``position``; the rows queued."""
        with self._store._writing() as c:
            seen: set[tuple[str, str]] = set()
            if rows:
                found = c.execute(
                    sa.select(ssf_outbox.c.stream_id, ssf_outbox.c.dedupe).where(
                        ssf_outbox.c.dedupe.in_(list({r["dedupe"] for r in rows}))
                    )
                )
                seen = {(r[0], r[1]) for r in found}
            queued = []
            for row in rows:
                if (row["stream_id"], row["dedupe"]) not in seen:
                    seen.add((row["stream_id"], row["dedupe"]))
                    queued.append({**row, "status": PENDING, "attempts": 0})
            if queued:
                c.execute(ssf_outbox.insert(), queued)
            current = c.execute(sa.select(ssf_cursor.c.position).where(ssf_cursor.c.name == CURSOR)).scalar()
            if current is None:
                c.execute(ssf_cursor.insert().values(name=CURSOR, position=position))
            elif position > current:
                c.execute(ssf_cursor.update().where(ssf_cursor.c.name == CURSOR).values(position=position))
        return queued

    def receipt(self, case_id: str, system: str, account_id: str, kind: str) -> str | None:
        """The stored receipt (JSON) of one action of a case."""
        query = sa.select(actions.c.receipt).where(
            actions.c.case_id == case_id,
            actions.c.system == system,
            actions.c.account_id == account_id,
            actions.c.kind == kind,
        )
        with self._store._reading() as c:
            return c.execute(query).scalar()

    def add(self, row: dict[str, Any]) -> None:
        """Queue one SET outside the feed (a verification event)."""
        with self._store._writing() as c:
            c.execute(ssf_outbox.insert().values(status=PENDING, attempts=0, **row))

    # -- delivery ---------------------------------------------------------------------

    def due(self, stream_ids: Iterable[str], now: datetime, limit: int = 200) -> list[dict[str, Any]]:
        """Pending SETs of ``stream_ids`` whose next attempt is due, oldest first."""
        ids = list(stream_ids)
        if not ids:
            return []
        query = (
            sa.select(ssf_outbox)
            .where(ssf_outbox.c.stream_id.in_(ids), ssf_outbox.c.status == PENDING, ssf_outbox.c.next_attempt_at <= now)
            .order_by(ssf_outbox.c.id)
            .limit(limit)
        )
        with self._store._reading() as c:
            return [row_dict(r) for r in c.execute(query).mappings()]

    def next_due(self, stream_ids: Iterable[str]) -> datetime | None:
        ids = list(stream_ids)
        if not ids:
            return None
        query = sa.select(sa.func.min(ssf_outbox.c.next_attempt_at)).where(
            ssf_outbox.c.stream_id.in_(ids), ssf_outbox.c.status == PENDING
        )
        with self._store._reading() as c:
            value = c.execute(query).scalar()
        return row_dict({"at": value})["at"] if value else None

    def pending(self, stream_id: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` unacknowledged SETs of a poll stream, and whether more wait."""
        query = (
            sa.select(ssf_outbox)
            .where(ssf_outbox.c.stream_id == stream_id, ssf_outbox.c.status == PENDING)
            .order_by(ssf_outbox.c.id)
            .limit(limit + 1)
        )
        with self._store._reading() as c:
            rows = [row_dict(r) for r in c.execute(query).mappings()]
        return rows[:limit], len(rows) > limit

    def acknowledge(self, stream_id: str, jtis: Iterable[str], now: datetime, error: str | None = None) -> list[str]:
        """Mark the stream's SETs ``jtis`` delivered (or failed, with the receiver's ``error``); the jtis it knew."""
        wanted = list(jtis)
        if not wanted:
            return []
        where = (ssf_outbox.c.stream_id == stream_id, ssf_outbox.c.jti.in_(wanted), ssf_outbox.c.status == PENDING)
        with self._store._writing() as c:
            known = [r[0] for r in c.execute(sa.select(ssf_outbox.c.jti).where(*where))]
            c.execute(
                ssf_outbox.update()
                .where(*where)
                .values(
                    status=FAILED if error else DELIVERED,
                    delivered_at=now,
                    error=error,
                    attempts=ssf_outbox.c.attempts + 1,
                )
            )
        return known

    def drop_pending(self, stream_id: str, now: datetime, why: str) -> int:
        """Give up every SET the stream still holds (it was disabled); how many."""
        where = (ssf_outbox.c.stream_id == stream_id, ssf_outbox.c.status == PENDING)
        with self._store._writing() as c:
            done = c.execute(ssf_outbox.update().where(*where).values(status=FAILED, delivered_at=now, error=why))
        return int(done.rowcount or 0)

    def postpone(self, stream_id: str, person_id: str | None, after_id: int, until: datetime) -> None:
        """Hold the pending SETs of a stream about one person queued after ``after_id`` until ``until``."""
        person = ssf_outbox.c.person_id.is_(None) if person_id is None else ssf_outbox.c.person_id == person_id
        where = (
            ssf_outbox.c.stream_id == stream_id,
            person,
            ssf_outbox.c.id > after_id,
            ssf_outbox.c.status == PENDING,
            ssf_outbox.c.next_attempt_at < until,
        )
        with self._store._writing() as c:
            c.execute(ssf_outbox.update().where(*where).values(next_attempt_at=until))

    def mark(self, outbox_id: int, **values: Any) -> None:
        with self._store._writing() as c:
            c.execute(ssf_outbox.update().where(ssf_outbox.c.id == outbox_id).values(**values))

    def outbox_by_jti(self, jtis: Iterable[str]) -> list[dict[str, Any]]:
        with self._store._reading() as c:
            query = sa.select(ssf_outbox).where(ssf_outbox.c.jti.in_(list(jtis)))
            return [row_dict(r) for r in c.execute(query).mappings()]

    def outbox(self, stream_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(ssf_outbox).order_by(ssf_outbox.c.id)
        if stream_id is not None:
            query = query.where(ssf_outbox.c.stream_id == stream_id)
        with self._store._reading() as c:
            return [row_dict(r) for r in c.execute(query).mappings()]


def _stream(row: Any) -> dict[str, Any]:
    out = row_dict(row)
    out["config"] = json.loads(out["config"])
    return out
