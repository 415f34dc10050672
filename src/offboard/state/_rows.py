"""Rows as the store hands them out: dicts whose times are timezone-aware (SQLite forgets the zone)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["aware", "row_dict"]


def aware(value: datetime | None) -> datetime | None:
    """A naive time read back from SQLite, in UTC as it was written."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def row_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = aware(value)
    return out
