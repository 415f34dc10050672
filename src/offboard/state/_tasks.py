"""Checklist tasks, read with the fields of their case."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ..models import TaskStatus
from .schema import cases, tasks

__all__ = ["Tasks"]


def _select() -> Any:
    return sa.select(tasks, cases.c.person_id, cases.c.status.label("case_status"), cases.c.person).join(
        cases, cases.c.id == tasks.c.case_id
    )


class Tasks:
    """``store.tasks``: rows carry the task's columns plus ``person_id``, ``case_status`` and ``person``."""

    def __init__(self, store: Any):
        self._store = store

    def _rows(self, query: Any) -> list[dict[str, Any]]:
        with self._store._reading() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def listing(
        self,
        *,
        case_id: str | None = None,
        owner: str | None = None,
        open_only: bool = False,
        due_by: datetime | None = None,
        leave_out: Iterable[str] = (),
    ) -> list[dict[str, Any]]:
        """Tasks by due time; ``leave_out`` names case statuses whose tasks are not wanted."""
        query = _select().order_by(tasks.c.due_at, tasks.c.case_id, tasks.c.id)
        if case_id is not None:
            query = query.where(tasks.c.case_id == case_id)
        if leave_out:
            query = query.where(cases.c.status.not_in([str(s) for s in leave_out]))
        if open_only:
            query = query.where(tasks.c.status == TaskStatus.OPEN.value)
        if owner is not None:
            query = query.where(tasks.c.owner == owner)
        if due_by is not None:
            query = query.where(tasks.c.due_at <= due_by)
        return self._rows(query)

    def get(self, case_id: str, task_id: str) -> dict[str, Any] | None:
        found = self._rows(_select().where(tasks.c.case_id == case_id, tasks.c.task_id == task_id))
        return found[0] if found else None

    def ids(self, case_id: str) -> list[str]:
        """The case's task ids, in the order they were stored."""
        query = sa.select(tasks.c.task_id).where(tasks.c.case_id == case_id).order_by(tasks.c.id)
        with self._store._reading() as conn:
            return list(conn.execute(query).scalars())

    def counts(self, case_id: str) -> list[tuple[str, bool, int]]:
        """(status, blocking, how many) for the case's tasks."""
        query = (
            sa.select(tasks.c.status, tasks.c.blocking, sa.func.count())
            .where(tasks.c.case_id == case_id)
            .group_by(tasks.c.status, tasks.c.blocking)
        )
        with self._store._reading() as conn:
            return [(status, bool(blocking), n) for status, blocking, n in conn.execute(query)]

    def to_remind(self, now: datetime, soon: datetime, leave_out: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Open tasks overdue and not yet reminded as such, or due by ``soon`` and not yet reminded at all."""
        query = (
            _select()
            .where(
                tasks.c.status == TaskStatus.OPEN.value,
                cases.c.status.not_in([str(s) for s in leave_out]),
                sa.or_(
                    sa.and_(tasks.c.reminded_overdue_at.is_(None), tasks.c.due_at <= now),
                    sa.and_(tasks.c.reminded_due_at.is_(None), tasks.c.due_at <= soon),
                ),
            )
            .order_by(tasks.c.due_at, tasks.c.id)
        )
        return self._rows(query)

    def update(self, row_id: int, **values: Any) -> None:
        """Change one task, by its row id."""
        if "status" in values:
            values["status"] = TaskStatus(values["status"]).value
        with self._store._writing() as conn:
            conn.execute(tasks.update().where(tasks.c.id == row_id).values(**values))
