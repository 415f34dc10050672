"""The account inventory (accounts and syncs) and the notices sent to managers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..models import SyncStatus
from ._rows import aware as _aware
from .schema import inventory_accounts, inventory_syncs, notices

__all__ = ["Inventory", "Notices"]


class Inventory:
    """``store.inventory``: every listed account, upserted page by page, and each system's syncs."""

    def __init__(self, store: Any):
        self._store = store

    def start_sync(self, system: str, started: datetime) -> int:
        """Record that a system's sync began; returns the sync's id."""
        with self._store._writing() as conn:
            return conn.execute(
                inventory_syncs.insert().values(
                    system=system, started_at=started, status=SyncStatus.RUNNING.value, accounts=0, matched=0, removed=0
                )
            ).inserted_primary_key[0]

    def finish_sync(self, sync_id: int, *, status: SyncStatus, **values: Any) -> None:
        with self._store._writing() as conn:
            conn.execute(
                inventory_syncs.update()
                .where(inventory_syncs.c.id == sync_id)
                .values(status=SyncStatus(status).value, **values)
            )

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        """Insert or update accounts by (system, account_id); an account keeps its ``first_seen``."""
        if not rows:
            return
        from sqlalchemy.dialects import postgresql, sqlite

        stmt = (sqlite.insert if self._store.is_sqlite else postgresql.insert)(inventory_accounts)
        keep = {"first_seen", "system", "account_id"}
        stmt = stmt.on_conflict_do_update(
            index_elements=["system", "account_id"],
            set_={c.name: stmt.excluded[c.name] for c in inventory_accounts.c if c.name not in keep},
        )
        with self._store._writing() as conn:
            conn.execute(stmt, rows)

    def remove_unseen(self, system: str, since: datetime) -> int:
        """Delete the system's accounts not seen since ``since``; returns how many."""
        gone = sa.and_(inventory_accounts.c.system == system, inventory_accounts.c.last_seen < since)
        with self._store._writing() as conn:
            return conn.execute(sa.delete(inventory_accounts).where(gone)).rowcount or 0

    def mark_inactive(self, keys: list[tuple[str, str]]) -> None:
        """Mark accounts, by (system, account_id), as no longer active."""
        with self._store._writing() as conn:
            for system, account_id in keys:
                conn.execute(
                    inventory_accounts.update()
                    .where(inventory_accounts.c.system == system, inventory_accounts.c.account_id == account_id)
                    .values(active=False)
                )

    def accounts(
        self, *, person_ids: Iterable[str] | None = None, active: bool | None = None, by_name: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Accounts by system then name (or account id), streamed; ``person_ids`` and ``active`` narrow them."""
        query = sa.select(inventory_accounts)
        if person_ids is not None:
            query = query.where(inventory_accounts.c.person_id.in_(list(person_ids)))
        if active is not None:
            query = query.where(inventory_accounts.c.active.is_(active))
        second = inventory_accounts.c.name if by_name else inventory_accounts.c.account_id
        with self._store._reading() as conn:
            rows = conn.execution_options(yield_per=2000).execute(query.order_by(inventory_accounts.c.system, second))
            for row in rows.mappings():
                out = dict(row)
                out["first_seen"], out["last_seen"] = _aware(out["first_seen"]), _aware(out["last_seen"])
                yield out

    def last_syncs(self) -> dict[str, str]:
        """Each system's latest finished sync: system -> its status (``ok`` or ``failed``)."""
        latest = (
            sa.select(sa.func.max(inventory_syncs.c.id))
            .where(inventory_syncs.c.status != SyncStatus.RUNNING.value)
            .group_by(inventory_syncs.c.system)
        )
        query = sa.select(inventory_syncs.c.system, inventory_syncs.c.status).where(inventory_syncs.c.id.in_(latest))
        with self._store._reading() as conn:
            return {system: status for system, status in conn.execute(query)}

    def active_counts(self) -> dict[str, int]:
        """How many active accounts each system holds."""
        query = (
            sa.select(inventory_accounts.c.system, sa.func.count())
            .where(inventory_accounts.c.active.is_(True))
            .group_by(inventory_accounts.c.system)
        )
        with self._store._reading() as conn:
            return {system: n for system, n in conn.execute(query)}


class Notices:
    """``store.notices``: the notices sent, so each goes once."""

    def __init__(self, store: Any):
        self._store = store

    def sent(self, kind: str) -> set[tuple[str, datetime]]:
        """(person id, end date in UTC) of every notice of ``kind`` sent so far."""
        query = sa.select(notices.c.person_id, notices.c.end_date).where(notices.c.kind == kind)
        with self._store._reading() as conn:
            return {
                (r[0], r[1].replace(tzinfo=UTC) if r[1].tzinfo is None else r[1].astimezone(UTC))
                for r in conn.execute(query)
            }

    def add(self, person_id: str, kind: str, end_date: datetime, sent_at: datetime, recipients: str) -> None:
        with self._store._writing() as conn:
            conn.execute(
                notices.insert().values(
                    person_id=person_id, kind=kind, end_date=end_date, sent_at=sent_at, recipients=recipients
                )
            )
