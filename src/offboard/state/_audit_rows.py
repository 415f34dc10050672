"""The shared audit log's tables on PostgreSQL, for ``audit``'s database sequencer.

``audit/_database.py`` keeps the logic (catching up, sequencing, mirroring); this module
holds its SQL. ``AuditRows.locked()`` is one transaction under an advisory lock, so one
process at a time appends or signs; ``reading()`` reads without the lock, to mirror.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

import sqlalchemy as sa

from ..errors import StoreError
from .schema import audit_checkpoints, audit_entries, audit_seals

__all__ = ["AuditRows", "AuditSeals", "LOCK_KEY"]

#: ``pg_advisory_xact_lock`` key held while entries are sequenced or a checkpoint is signed.
LOCK_KEY = int.from_bytes(sha256(b"offboard audit log").digest()[:8], "big", signed=True)


class AuditRows:
    """``audit_entries`` (one canonical line per ``seq``) and ``audit_checkpoints`` (signed notes by size)."""

    def __init__(self, db: sa.Engine):
        self.db = db

    @property
    def dialect(self) -> str:
        return self.db.dialect.name

    @contextmanager
    def locked(self) -> Iterator[AuditTables]:
        """One transaction holding the log's lock; it commits when the block ends without an error."""
        with self.db.begin() as conn:
            conn.execute(sa.text("select pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield AuditTables(conn)

    @contextmanager
    def reading(self) -> Iterator[AuditTables]:
        """A connection without the lock; database failures come out as ``StoreError``."""
        try:
            with self.db.connect() as conn:
                yield AuditTables(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"the audit tables cannot be read: {exc}") from exc

    def add_cosignatures(self, size: int, lines: list[str]) -> None:
        """Keep witnesses' cosignature lines of the checkpoint at ``size`` beside it (each line once)."""
        with self.db.begin() as conn:
            kept = conn.execute(
                sa.select(audit_checkpoints.c.cosignatures).where(audit_checkpoints.c.size == size).with_for_update()
            ).first()
            if kept is None:
                raise StoreError(f"no checkpoint of size {size} in audit_checkpoints to keep cosignatures for")
            text = kept.cosignatures or ""
            text += "".join(line for line in lines if line not in text)
            conn.execute(audit_checkpoints.update().where(audit_checkpoints.c.size == size).values(cosignatures=text))


class AuditTables:
    """The two tables, through one connection."""

    def __init__(self, conn: sa.Connection):
        self.conn = conn

    def entries(self, start: int) -> list[tuple[int, bytes]]:
        """(seq, line) from ``start`` on, in order."""
        query = (
            sa.select(audit_entries.c.seq, audit_entries.c.line)
            .where(audit_entries.c.seq >= start)
            .order_by(audit_entries.c.seq)
        )
        return [(row.seq, bytes(row.line)) for row in self.conn.execute(query)]

    def line(self, seq: int) -> bytes | None:
        found = self.conn.execute(sa.select(audit_entries.c.line).where(audit_entries.c.seq == seq)).scalar()
        return bytes(found) if found is not None else None

    def count(self) -> int:
        """One more than the largest ``seq``: the size of a gapless table."""
        return self.conn.execute(sa.select(sa.func.coalesce(sa.func.max(audit_entries.c.seq) + 1, 0))).scalar_one()

    def insert(self, start: int, lines: list[bytes]) -> None:
        """Lines at ``seq`` = start, start + 1, ... (the primary key refuses a duplicate)."""
        if lines:
            self.conn.execute(
                audit_entries.insert(), [{"seq": start + i, "line": line} for i, line in enumerate(lines)]
            )

    def add_checkpoint(self, size: int, note: str) -> None:
        """Keep a signed checkpoint; one already kept for ``size`` stays."""
        self.conn.execute(
            sa.text("insert into audit_checkpoints (size, note) values (:size, :note) on conflict (size) do nothing"),
            {"size": size, "note": note},
        )

    def cosignatures(self, size: int) -> str:
        """The witnesses' cosignature lines kept for the checkpoint at ``size`` ("" when none)."""
        found = self.conn.execute(
            sa.select(audit_checkpoints.c.cosignatures).where(audit_checkpoints.c.size == size)
        ).scalar()
        return found or ""

    def latest_checkpoint(self, at_most: int | None = None) -> tuple[int, str] | None:
        """(size, note) of the newest checkpoint, or of the newest covering at most ``at_most`` entries."""
        query = sa.select(audit_checkpoints.c.size, audit_checkpoints.c.note)
        if at_most is not None:
            query = query.where(audit_checkpoints.c.size <= at_most)
        row = self.conn.execute(query.order_by(audit_checkpoints.c.size.desc()).limit(1)).first()
        return (row.size, row.note) if row is not None else None


class AuditSeals:
    """``audit_seals``: every checkpoint the audit writer signed, by origin and size (``store.audit_seals``).

    The writer checks its entries against these before it signs again, so deleting or rewriting
    the checkpoint files in the log's directory cannot make it sign over edited history.
    """

    def __init__(self, store: Any):
        self.store = store

    def record(self, origin: str, size: int, root: bytes, note: str) -> None:
        """Remember a signed checkpoint; a second one for the same size must have the same root."""
        encoded = base64.b64encode(root).decode("ascii")
        known = self.seals(origin, size, size).get(size)
        if known is not None:
            if known != root:
                raise StoreError(f"audit_seals already holds a different root for {origin} size {size}")
            return
        try:
            with self.store._writing() as conn:
                conn.execute(
                    audit_seals.insert().values(
                        origin=origin, size=size, root=encoded, note=note, signed_at=datetime.now(UTC)
                    )
                )
        except sa.exc.IntegrityError:  # another process recorded it meanwhile
            if self.seals(origin, size, size).get(size) != root:
                raise StoreError(f"audit_seals already holds a different root for {origin} size {size}") from None

    def seals(self, origin: str, low: int = 0, high: int | None = None) -> dict[int, bytes]:
        """{size: root} of the checkpoints signed for ``origin`` with ``low <= size <= high``."""
        query = sa.select(audit_seals.c.size, audit_seals.c.root).where(
            audit_seals.c.origin == origin, audit_seals.c.size >= low
        )
        if high is not None:
            query = query.where(audit_seals.c.size <= high)
        with self.store._reading() as conn:
            return {row.size: base64.b64decode(row.root) for row in conn.execute(query)}
