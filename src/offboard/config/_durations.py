"""Durations (``30d``), day offsets (``-2d``) and UTC instants: a leaf that imports nothing from offboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import overload

__all__ = ["parse_duration", "parse_offset", "aware", "iso"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$", re.IGNORECASE)
_OFFSET = re.compile(r"^\s*([+-]?)\s*(\d+)\s*([dw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, *, bare: str | None = None) -> timedelta:
    """``30d`` -> 30 days; units s, m, h, d, w. ``bare`` is the unit of a number written without one."""
    match = _DURATION.match(str(text))
    unit = (match.group(2).lower() or bare) if match else None
    if not match or unit is None:
        example = "24h, 90m, 2d or 3600" if bare == "s" else "30d, 12h or 15m"
        raise ValueError(f"{text!r} is not a duration such as {example}")
    return timedelta(**{_UNITS[unit]: int(match.group(1))})


def parse_offset(text: str) -> timedelta:
    """``-2d`` -> two days before, ``+1w`` -> a week after; units d, w."""
    match = _OFFSET.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a day offset such as -2d, 0d, +7d or +1w")
    days = int(match.group(2)) * (7 if match.group(3) == "w" else 1)
    return timedelta(days=-days if match.group(1) == "-" else days)


@overload
def aware(value: datetime) -> datetime: ...


@overload
def aware(value: None) -> None: ...


def aware(value: datetime | None) -> datetime | None:
    """``value`` with UTC attached when it has no time zone (SQLite returns naive datetimes)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    """An instant as the log writes it: ISO 8601 with milliseconds and ``Z``."""
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z") if value else None
