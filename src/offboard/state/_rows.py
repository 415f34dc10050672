"""Rows as the store hands them out: dicts whose times are timezone-aware (SQLite forgets the zone)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..config._durations import aware

__all__ = ["aware", "row_dict"]


def row_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = aware(value)
    return out
