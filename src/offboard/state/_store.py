"""Durable state in SQL (SQLAlchemy Core): SQLite with WAL by default, PostgreSQL by URL.

The schema is created and upgraded by Alembic (``offboard/_migrations``); the tables
below are the single description of it that the migrations are tested against.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from ..config._durations import aware as _aware
from ..errors import ConfigError

__all__ = ["Store", "metadata", "utcnow", "new_id"]

metadata = sa.MetaData()

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.String(320), nullable=False, index=True),
    sa.Column("person", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("policy", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("effective_at", sa.DateTime(timezone=True)),
    sa.Column("termination_at", sa.DateTime(timezone=True)),
    sa.Column("source_event", sa.String(200)),
)
# One open case per person: a webhook and a sweep arriving together cannot both act.
sa.Index(
    "uq_one_running_case_per_person",
    cases.c.person_id,
    unique=True,
    sqlite_where=cases.c.status == "running",
    postgresql_where=cases.c.status == "running",
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("system", sa.String(100), nullable=False),
    sa.Column("account_id", sa.String(400), nullable=False),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("params", sa.Text, nullable=False, default="{}"),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("receipt", sa.Text),
    sa.Column("verification", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("requested_at", sa.DateTime(timezone=True)),
    sa.Column("responded_at", sa.DateTime(timezone=True)),
    sa.Column("verified_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("case_id", "system", "account_id", "kind", name="uq_action"),
)

followups = sa.Table(
    "followups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, default="scheduled"),
    sa.Column("done_case", sa.String(40)),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), index=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str = "case") -> str:
    """A sortable, unique id such as ``case-20261125-1f3a9c2e``."""
    return f"{prefix}-{utcnow():%Y%m%d}-{uuid.uuid4().hex[:8]}"


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class Store:
    """The state database. Thread-safe; writes on SQLite are serialized."""

    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        try:
            self.engine = sa.create_engine(url, **kwargs)
        except Exception as exc:
            raise ConfigError(f"cannot use store URL: {exc}") from None
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._write_lock = threading.RLock() if self.is_sqlite else _NullLock()

    @classmethod
    def open(cls, url: str | None, data_dir: Path) -> Store:
        """Open (and migrate) the store at ``url`` or ``data_dir/offboard.db``."""
        store = cls(url or f"sqlite:///{data_dir / 'offboard.db'}")
        store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema up to date with Alembic."""
        from .migrations import upgrade

        with self._write_lock:
            upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- cases ----------------------------------------------------------------

    def insert_case(
        self,
        row: dict[str, Any],
        action_rows: list[dict[str, Any]],
        later: list[dict[str, Any]],
        also: Callable[[sa.Connection], None] | None = None,
        extra: Iterable[tuple[sa.Table, list[dict[str, Any]]]] = (),
    ) -> None:
        """Write a case, its actions, follow-ups and ``extra`` rows (its tasks) in one transaction.

        ``also`` joins the transaction (to enqueue jobs)."""
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(cases.insert().values(**row))
            if action_rows:
                conn.execute(actions.insert(), action_rows)
            if later:
                conn.execute(followups.insert(), later)
            for table, rows in extra:
                if rows:
                    conn.execute(table.insert(), rows)
            if also is not None:
                also(conn)

    def claim_close(self, case_id: str) -> bool:
        """Atomically mark a running case whose actions are all final as closing; True for the one caller that wins."""
        final = ("verified", "failed", "unverified", "skipped", "undone", "waiting")
        pending = sa.select(actions.c.id).where(actions.c.case_id == case_id, actions.c.status.not_in(final)).exists()
        with self._write_lock, self.engine.begin() as conn:
            result = conn.execute(
                cases.update()
                .where(cases.c.id == case_id, cases.c.status == "running", ~pending)
                .values(status="closing", updated_at=utcnow())
            )
            return result.rowcount == 1

    def update_case(self, case_id: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(cases.update().where(cases.c.id == case_id).values(**values))

    def case(self, case_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).mappings().first()
        return _row(row) if row else None

    def find_cases(
        self, *, statuses: Iterable[str] | None = None, person_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        query = sa.select(cases).order_by(cases.c.created_at.desc()).limit(limit)
        if statuses is not None:
            query = query.where(cases.c.status.in_(list(statuses)))
        if person_id is not None:
            query = query.where(cases.c.person_id == person_id)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    def case_by_prefix(self, prefix: str) -> dict[str, Any] | None:
        found = self.case(prefix)
        if found:
            return found
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(cases).where(cases.c.id.like(f"%{prefix}%")).limit(2)).mappings().all()
        return _row(rows[0]) if len(rows) == 1 else None

    # -- actions --------------------------------------------------------------

    def actions(self, case_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(actions).where(actions.c.case_id == case_id).order_by(actions.c.position)
            ).mappings()
            return [_row(r) for r in rows]

    def update_action(self, action_id: int, **values: Any) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(actions.update().where(actions.c.id == action_id).values(**values))

    # -- follow-ups -----------------------------------------------------------

    def due_followups(self, now: datetime) -> list[dict[str, Any]]:
        query = sa.select(followups).where(followups.c.status == "scheduled", followups.c.due_at <= now)
        with self.engine.connect() as conn:
            return [_row(r) for r in conn.execute(query.order_by(followups.c.due_at)).mappings()]

    def followups(self, case_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(followups).where(followups.c.case_id == case_id)).mappings()
            return [_row(r) for r in rows]

    def update_followup(self, followup_id: int, **values: Any) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(followups.update().where(followups.c.id == followup_id).values(**values))

    # -- events -----------------------------------------------------------------

    def add_event(
        self, case_id: str | None, type: str, payload: dict[str, Any], action: tuple[int, dict[str, Any]] | None = None
    ) -> None:
        """Store an event; ``action`` = (id, values) updates that action in the same transaction."""
        with self._write_lock, self.engine.begin() as conn:
            if action is not None:
                conn.execute(actions.update().where(actions.c.id == action[0]).values(**action[1]))
            conn.execute(
                events.insert().values(case_id=case_id, type=type, payload=dumps(payload), created_at=utcnow())
            )

    def events(self, case_id: str | None = None) -> Iterator[dict[str, Any]]:
        query = sa.select(events).order_by(events.c.id)
        if case_id is not None:
            query = query.where(events.c.case_id == case_id)
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                yield _row(row)


class _NullLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = _aware(value)
    return out
