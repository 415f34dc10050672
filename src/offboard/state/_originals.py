"""``store.originals``: an account's before-state as it was before offboard first wrote to it.

One row per (system, account id, action kind). The first case to touch the account inserts it
(insert-if-absent: a later read, by a re-run or another case, never overwrites it), so an undo
can restore the true original even when a lost reply left the write applied and the next attempt
read offboard's own change as its "before". An undo that restores it releases the row.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ._rows import row_dict
from .schema import original_states

__all__ = ["Originals"]


class Originals:
    """The original states of a store (``store.originals``)."""

    def __init__(self, store: Any):
        self._store = store

    def keep(self, system: str, account_id: str, kind: str, case_id: str, before: dict[str, Any]) -> bool:
        """Store ``before`` unless a state is already kept for the account; True when this one was stored."""
        key = dict(system=system, account_id=account_id, kind=kind)
        row = dict(
            key, case_id=case_id, before=json.dumps(before, sort_keys=True, default=str), captured_at=datetime.now(UTC)
        )
        try:
            with self._store._writing() as c:
                c.execute(original_states.insert().values(**row))
        except sa.exc.IntegrityError:  # the first write wins, across processes too
            return False
        return True

    def get(self, system: str, account_id: str, kind: str) -> dict[str, Any] | None:
        """The kept row (``before`` decoded), or None."""
        where = (
            original_states.c.system == system,
            original_states.c.account_id == account_id,
            original_states.c.kind == kind,
        )
        with self._store._reading() as c:
            row = c.execute(sa.select(original_states).where(*where)).mappings().first()
        if row is None:
            return None
        out = row_dict(row)
        out["before"] = json.loads(out["before"])
        return out

    def release(self, system: str, account_id: str, kind: str) -> None:
        """Forget the account's original (an undo restored it: the next case reads afresh)."""
        with self._store._writing() as c:
            c.execute(
                original_states.delete().where(
                    original_states.c.system == system,
                    original_states.c.account_id == account_id,
                    original_states.c.kind == kind,
                )
            )
