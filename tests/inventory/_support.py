"""Helpers for inventory and sweep tests: HR exports for a test company."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from offboard.state._store import Store


def write_hr(
    path: Path, people: Iterable[tuple[str, str]], leavers: Iterable[str] = (), **overrides: dict[str, Any]
) -> Path:
    """An HR export: everyone an employee, the ``leavers`` contractors whose end date passed."""
    leavers = set(leavers)
    rows = []
    for i, (login, email) in enumerate(people):
        row: dict[str, Any] = {
            "id": email,
            "email": email,
            "employee_id": f"E{i:04d}",
            "name": login,
            "type": "employee",
            "manager": "boss@corp.example",
            "timezone": "Europe/Berlin",
        }
        if login in leavers:
            row.update(type="contractor", end_date=(date.today() - timedelta(days=3)).isoformat())
        row.update(overrides.get(login, {}))
        rows.append(row)
    path.write_text(json.dumps(rows))
    return path


def events(home: Path, type: str) -> list[dict[str, Any]]:
    """Recorded events of one type, from the store in ``home``."""
    store = Store(f"sqlite:///{home / 'offboard.db'}")
    try:
        return [dict(e, payload=json.loads(e["payload"])) for e in store.events() if e["type"] == type]
    finally:
        store.close()


def cases(home: Path) -> list[dict[str, Any]]:
    store = Store(f"sqlite:///{home / 'offboard.db'}")
    try:
        return store.find_cases(limit=10_000)
    finally:
        store.close()


def inventory_rows(home: Path) -> list[dict[str, Any]]:
    engine = sa.create_engine(f"sqlite:///{home / 'offboard.db'}")
    try:
        with engine.connect() as conn:
            return [
                dict(r)
                for r in conn.execute(
                    sa.text("select * from inventory_accounts order by system, account_id")
                ).mappings()
            ]
    finally:
        engine.dispose()
