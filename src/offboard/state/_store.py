"""Durable state in SQL (SQLAlchemy Core): SQLite with WAL by default, PostgreSQL by URL.

The schema is created and upgraded by Alembic (``state/migrations``); ``state.schema``
holds the tables the migrations are tested against. The store is the only owner of the
database: other subsystems call its methods and those of the parts hanging off it
(``store.hr_events``, ``store.inventory``, ``store.notices``, ``store.tasks``, ``store.jobs``,
``store.rate_limits``, ``store.audit_seals``, ``store.leases``, ``store.originals``).
"""

from __future__ import annotations

import enum
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from ..errors import CaseConflict, ConfigError
from ..models import ActionStatus, CaseStatus, FollowUpStatus
from ._audit_rows import AuditRows, AuditSeals
from ._intake import HREvents
from ._inventory import Inventory, Notices
from ._jobs import Jobs, RateLimits
from ._leases import Leases
from ._originals import Originals
from ._rows import row_dict as _row
from ._signals import Signals
from ._tasks import Tasks
from .schema import actions, cases, events, followups, tasks

__all__ = ["Store", "utcnow", "new_id", "dumps"]


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str = "case") -> str:
    """A sortable, unique id such as ``case-20261125-1f3a9c2e``."""
    return f"{prefix}-{utcnow():%Y%m%d}-{uuid.uuid4().hex[:8]}"


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


#: The writes every action makes, built once: SQLAlchemy then skips building each statement and its
#: cache key per call (a bulk run makes three of these per action); the columns set are the values' keys.
_UPDATE_ACTION = actions.update().where(actions.c.id == sa.bindparam("_action_id"))
_INSERT_EVENT = events.insert()


def _values(statuses: Iterable[str]) -> list[str]:
    """Statuses as the plain strings stored (so enum members bind alike on every driver)."""
    return [s.value if isinstance(s, enum.Enum) else s for s in statuses]


class Store:
    """The state database. Thread-safe; writes on SQLite are serialized."""

    def __init__(self, url: str):
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"future": True}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        try:
            self._db = sa.create_engine(url, **kwargs)
        except Exception as exc:
            raise ConfigError(f"cannot use store URL: {exc}") from None
        if self.is_sqlite:
            event.listen(self._db, "connect", _sqlite_pragmas)
        self._write_lock = threading.RLock() if self.is_sqlite else _NullLock()
        self.hr_events = HREvents(self)
        self.inventory = Inventory(self)
        self.notices = Notices(self)
        self.tasks = Tasks(self)
        self.jobs = Jobs(self)
        self.rate_limits = RateLimits(self)
        self.audit_seals = AuditSeals(self)
        self.leases = Leases(self)
        self.originals = Originals(self)
        self.signals = Signals(self)

    @classmethod
    def open(cls, url: str | None, data_dir: Path) -> Store:
        """Open (and migrate) the store at ``url`` or ``data_dir/offboard.db``."""
        if url is None:  # the default SQLite file holds case history: readable by its owner only, like the key
            path = data_dir / "offboard.db"
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            url = f"sqlite:///{path}"
        store = cls(url)
        store.migrate()
        return store

    @property
    def url(self) -> str:
        """The store's URL with any password hidden, fit to print."""
        return self._db.url.render_as_string(hide_password=True)

    def migrate(self) -> None:
        """Bring the schema up to date with Alembic."""
        from .migrations import upgrade

        with self._write_lock:
            upgrade(self._db)

    def close(self) -> None:
        self._db.dispose()

    @contextmanager
    def _reading(self) -> Iterator[sa.Connection]:
        with self._db.connect() as conn:
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[sa.Connection]:
        """One transaction, serialized on SQLite."""
        with self._write_lock, self._db.begin() as conn:
            yield conn

    def audit_rows(self) -> AuditRows:
        """The shared audit log's tables, for ``audit.use_database`` (PostgreSQL)."""
        return AuditRows(self._db)

    # -- cases ----------------------------------------------------------------

    def insert_case(
        self,
        row: dict[str, Any],
        action_rows: list[dict[str, Any]],
        later: list[dict[str, Any]],
        also: Callable[[Any], None] | None = None,
        task_rows: Iterable[dict[str, Any]] = (),
    ) -> None:
        """Write a case, its actions, follow-ups and checklist tasks in one transaction.

        ``also`` joins the transaction (``store.jobs.deferrer`` enqueues the case's jobs). Raises
        ``CaseConflict`` if another case for the person is running."""
        try:
            with self._writing() as conn:
                conn.execute(cases.insert().values(**row))
                if action_rows:
                    conn.execute(actions.insert(), action_rows)
                if later:
                    conn.execute(followups.insert(), later)
                tasks_to_add = list(task_rows)
                if tasks_to_add:
                    conn.execute(tasks.insert(), tasks_to_add)
                if also is not None:
                    also(conn)
        except sa.exc.IntegrityError:
            raise CaseConflict(f"another case for {row['person_id']} is already running") from None

    def claim_close(self, case_id: str) -> bool:
        """Atomically mark a running case whose actions are all final as closing; True for the one caller that wins."""
        done = _values(ActionStatus.FINAL | {ActionStatus.WAITING})
        pending = sa.select(actions.c.id).where(actions.c.case_id == case_id, actions.c.status.not_in(done)).exists()
        with self._writing() as conn:
            result = conn.execute(
                cases.update()
                .where(cases.c.id == case_id, cases.c.status == CaseStatus.RUNNING.value, ~pending)
                .values(status=CaseStatus.CLOSING.value, updated_at=utcnow())
            )
            return result.rowcount == 1

    def update_case(self, case_id: str, **values: Any) -> None:
        values["updated_at"] = utcnow()
        with self._writing() as conn:
            conn.execute(cases.update().where(cases.c.id == case_id).values(**values))

    def case(self, case_id: str) -> dict[str, Any] | None:
        with self._reading() as conn:
            row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).mappings().first()
        return _row(row) if row else None

    def find_cases(
        self, *, statuses: Iterable[str] | None = None, person_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        query = sa.select(cases).order_by(cases.c.created_at.desc()).limit(limit)
        if statuses is not None:
            query = query.where(cases.c.status.in_(_values(statuses)))
        if person_id is not None:
            query = query.where(cases.c.person_id == person_id)
        with self._reading() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    def case_by_prefix(self, prefix: str) -> dict[str, Any] | None:
        found = self.case(prefix)
        if found:
            return found
        with self._reading() as conn:
            rows = conn.execute(sa.select(cases).where(cases.c.id.like(f"%{prefix}%")).limit(2)).mappings().all()
        return _row(rows[0]) if len(rows) == 1 else None

    def case_for_event(self, event_key: str) -> str | None:
        """The id of the case an HR event opened, if any."""
        with self._reading() as conn:
            return conn.execute(sa.select(cases.c.id).where(cases.c.source_event == event_key)).scalar()

    def latest_case_id(self, person_id: str, *, trigger: str) -> str | None:
        """The id of the newest case opened for ``person_id`` by ``trigger``."""
        query = (
            sa.select(cases.c.id)
            .where(cases.c.person_id == person_id, cases.c.trigger == trigger)
            .order_by(cases.c.created_at.desc())
            .limit(1)
        )
        with self._reading() as conn:
            return conn.execute(query).scalar()

    def unfinished(self, case_ids: Iterable[str]) -> set[str]:
        """Those of ``case_ids`` that are not final yet (running or closing), in one query."""
        query = sa.select(cases.c.id).where(
            cases.c.id.in_(list(case_ids)), cases.c.status.not_in(_values(CaseStatus.FINAL))
        )
        with self._reading() as conn:
            return set(conn.execute(query).scalars())

    def case_counts_by_status(self) -> dict[str, int]:
        with self._reading() as conn:
            return dict(conn.execute(sa.select(cases.c.status, sa.func.count()).group_by(cases.c.status)).all())

    # -- actions --------------------------------------------------------------

    def actions(self, case_id: str) -> list[dict[str, Any]]:
        with self._reading() as conn:
            rows = conn.execute(
                sa.select(actions).where(actions.c.case_id == case_id).order_by(actions.c.position)
            ).mappings()
            return [_row(r) for r in rows]

    def update_action(self, action_id: int, **values: Any) -> None:
        with self._writing() as conn:
            conn.execute(_UPDATE_ACTION, {"_action_id": action_id, **values})

    def owed_actions(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """Owed work: the failed or unverified actions of incomplete cases, oldest case first."""
        query = (
            sa.select(
                actions,
                cases.c.person_id,
                cases.c.created_at.label("case_created_at"),
                cases.c.closed_at.label("case_closed_at"),
                cases.c.detail.label("case_detail"),
            )
            .join(cases, cases.c.id == actions.c.case_id)
            .where(
                cases.c.status == CaseStatus.INCOMPLETE.value,
                actions.c.status.in_([ActionStatus.FAILED.value, ActionStatus.UNVERIFIED.value]),
            )
            .order_by(cases.c.created_at, actions.c.case_id, actions.c.position)
        )
        if case_id is not None:
            query = query.where(actions.c.case_id == case_id)
        with self._reading() as conn:
            return [_row(r) for r in conn.execute(query).mappings()]

    def reopen_actions(
        self, case_id: str, action_ids: list[int], detail: str, also: Callable[[Any], None] | None = None
    ) -> bool:
        """Put an incomplete case back to running (with ``detail``) and ``action_ids`` to pending, in one transaction.

        False (and nothing changed) when the case is no longer incomplete or its person has a running case.
        ``also`` joins the transaction (``store.jobs.deferrer``: the retried chains' jobs)."""
        try:
            with self._writing() as conn:
                claimed = conn.execute(
                    cases.update()
                    .where(cases.c.id == case_id, cases.c.status == CaseStatus.INCOMPLETE.value)
                    .values(status=CaseStatus.RUNNING.value, detail=detail, updated_at=utcnow())
                ).rowcount
                if claimed != 1:
                    return False
                conn.execute(
                    actions.update()
                    .where(actions.c.case_id == case_id, actions.c.id.in_(action_ids))
                    .values(status=ActionStatus.PENDING.value, error=None)
                )
                if also is not None:
                    also(conn)
        except sa.exc.IntegrityError:  # the person's one running case is another one
            return False
        return True

    # -- follow-ups -----------------------------------------------------------

    def due_followups(self, now: datetime) -> list[dict[str, Any]]:
        query = sa.select(followups).where(
            followups.c.status == FollowUpStatus.SCHEDULED.value, followups.c.due_at <= now
        )
        with self._reading() as conn:
            return [_row(r) for r in conn.execute(query.order_by(followups.c.due_at)).mappings()]

    def followups(self, case_id: str) -> list[dict[str, Any]]:
        with self._reading() as conn:
            rows = conn.execute(sa.select(followups).where(followups.c.case_id == case_id)).mappings()
            return [_row(r) for r in rows]

    def update_followup(self, followup_id: int, **values: Any) -> None:
        with self._writing() as conn:
            conn.execute(followups.update().where(followups.c.id == followup_id).values(**values))

    # -- events -----------------------------------------------------------------

    def add_event(
        self, case_id: str | None, type: str, payload: dict[str, Any], action: tuple[int, dict[str, Any]] | None = None
    ) -> None:
        """Store an event; ``action`` = (id, values) updates that action in the same transaction."""
        with self._writing() as conn:
            if action is not None:
                conn.execute(_UPDATE_ACTION, {"_action_id": action[0], **action[1]})
            conn.execute(
                _INSERT_EVENT, {"case_id": case_id, "type": type, "payload": dumps(payload), "created_at": utcnow()}
            )

    def events(self, case_id: str | None = None) -> Iterator[dict[str, Any]]:
        query = sa.select(events).order_by(events.c.id)
        if case_id is not None:
            query = query.where(events.c.case_id == case_id)
        with self._reading() as conn:
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
