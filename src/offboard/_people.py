"""People sources: where offboard learns who people are (HR exports, directories, ...).

A people source is a class with a ``name``, a pydantic ``Settings`` model and a
``people()`` method yielding :class:`~offboard.models.Person`. Sources are registered
through the ``register_people_sources`` hook; the HR export file is built in.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, time
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigError
from .hookspecs import hookimpl
from .models import Person

__all__ = ["PeopleSource", "HRExport", "find_person"]


class PeopleSource:
    """Base class for people sources."""

    name: ClassVar[str] = ""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")

    def __init__(self, settings: BaseModel | dict[str, Any] | None = None, *, base: Path | None = None):
        self.settings = settings if isinstance(settings, self.Settings) else self.Settings.model_validate(settings or {})
        self.base = base or Path.cwd()

    def people(self) -> Iterable[Person]:
        """Every person this source knows."""
        raise NotImplementedError

    def find(self, ref: str) -> Person | None:
        """The person matching ``ref`` (email, alias or employee id), or None."""
        return find_person(self.people(), ref)


def find_person(people: Iterable[Person], ref: str) -> Person | None:
    """Match ``ref`` against id, emails and employee id, case-insensitively."""
    key = ref.strip().lower()
    for person in people:
        if key == person.id.lower() or key in person.emails or (person.employee_id and key == person.employee_id.lower()):
            return person
    return None


class HRExport(PeopleSource):
    """An HR export file (CSV or JSON list of objects) with mapped columns."""

    name = "hr_export"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str
        format: str | None = Field(default=None, pattern="^(csv|json)$")
        columns: dict[str, str] = Field(
            default_factory=dict, description="our field -> the file's column: id, email, aliases, employee_id, name, type, manager, end_date, timezone, active"
        )

    def _column(self, field: str) -> str:
        return self.settings.columns.get(field, field)

    def _rows(self) -> Iterator[dict[str, Any]]:
        path = Path(self.settings.path).expanduser()
        if not path.is_absolute():
            path = self.base / path
        fmt = self.settings.format or ("json" if path.suffix.lower() == ".json" else "csv")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"cannot read HR export: {exc.strerror}", where=str(path)) from None
        if fmt == "json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"not valid JSON at line {exc.lineno}: {exc.msg}", where=str(path)) from None
            if not isinstance(data, list):
                raise ConfigError("the JSON HR export must be a list of objects", where=str(path))
            yield from data
        else:
            yield from csv.DictReader(text.splitlines())

    def people(self) -> Iterator[Person]:
        for number, row in enumerate(self._rows(), start=1):
            yield self._person(row, number)

    def _person(self, row: dict[str, Any], number: int) -> Person:
        def get(field: str) -> Any:
            value = row.get(self._column(field))
            return value.strip() if isinstance(value, str) else value

        email = get("email")
        ident = get("id") or email or get("employee_id")
        if not ident:
            raise ConfigError(f"row {number} has no id, email or employee id", where=self.settings.path)
        tz = get("timezone") or "UTC"
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"row {number}: unknown time zone {tz!r}", where=self.settings.path) from None
        aliases = get("aliases") or ()
        if isinstance(aliases, str):
            aliases = tuple(a.strip() for a in aliases.replace(";", ",").split(",") if a.strip())
        active = get("active")
        return Person(
            id=str(ident),
            email=email or None,
            aliases=tuple(aliases),
            employee_id=str(get("employee_id")) if get("employee_id") else None,
            name=get("name") or None,
            type=(get("type") or "employee").lower(),
            manager=get("manager") or None,
            end_date=_end_date(get("end_date"), zone, number, self.settings.path),
            timezone=tz,
            active=str(active).lower() not in ("false", "0", "no", "inactive") if active not in (None, "") else True,
        )


def _end_date(value: Any, zone: ZoneInfo, number: int, where: str) -> datetime | None:
    """An end date means the end of that day in the person's zone unless a time is given."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"row {number}: end date {value!r} is not an ISO date", where=where) from None
    if len(str(value)) <= 10:
        parsed = datetime.combine(parsed.date(), time(23, 59, 59))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


@hookimpl
def register_people_sources(register):
    register(HRExport)
