"""Reconciliation: HR's leavers for a period against the cases in the audit log.

Leavers come from HR's own export (``--leavers FILE``, a CSV with a person column and a
termination date column) or from the configured people sources. A leaver is matched to
cases on the person id, any email and the employee id, case-insensitively.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "Leaver",
    "LeaverList",
    "Reconciliation",
    "leavers_from_csv",
    "leavers_from_people",
    "reconcile",
]

#: Header names (lower case, runs of other characters as "_") taken as a person identifier, in order of preference.
ID_COLUMNS = (
    "email",
    "work_email",
    "email_address",
    "mail",
    "upn",
    "user_principal_name",
    "id",
    "person",
    "person_id",
    "username",
    "user",
    "login",
    "employee_id",
    "employee_number",
    "employee_no",
    "emp_id",
    "employee",
    "worker_id",
    "staff_id",
)
#: Header names taken as the termination date, first found wins.
DATE_COLUMNS = (
    "termination_date",
    "termination_at",
    "terminated_at",
    "terminated_on",
    "termination",
    "end_date",
    "last_day",
    "last_working_day",
    "last_day_worked",
    "leave_date",
    "leaving_date",
    "exit_date",
    "separation_date",
    "effective_date",
    "date",
)
NAME_COLUMNS = ("name", "full_name", "display_name", "employee_name")


@dataclass(frozen=True)
class Leaver:
    """Someone HR says left: what to show, what to match on, and the day they left (HR's calendar day)."""

    ref: str
    keys: frozenset[str]
    name: str | None = None
    end: date | None = None
    active: bool = False
    where: str = ""


@dataclass
class LeaverList:
    """Leavers and where they came from (shown in the report)."""

    source: str
    leavers: list[Leaver]


@dataclass
class Reconciliation:
    """Leavers in the period, those with a case in it, elsewhere, or none at all."""

    source: str
    in_period: list[Leaver] = field(default_factory=list)
    matched: list[tuple[Leaver, list[str]]] = field(default_factory=list)
    missing: list[Leaver] = field(default_factory=list)
    elsewhere: list[tuple[Leaver, list[str]]] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return datetime.fromisoformat(value).date()  # a time with an offset: HR's own calendar day


def leavers_from_csv(path: Path) -> LeaverList:
    """Read HR's leavers export; ValueError with a one-line message naming the file and row."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text (export the list as CSV, UTF-8)") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ValueError(f"{path} is empty: expected a header row with a person column and a termination date column")
    delimiter = max((",", ";", "\t"), key=lines[0].count)
    reader = csv.reader(lines, delimiter=delimiter)
    raw_header = next(reader)
    header = [_norm(h) for h in raw_header]
    ids = sorted((i for i, h in enumerate(header) if h in ID_COLUMNS), key=lambda i: ID_COLUMNS.index(header[i]))
    when = next((header.index(c) for c in DATE_COLUMNS if c in header), None)
    names = next((header.index(c) for c in NAME_COLUMNS if c in header), None)
    shown = ", ".join(h.strip() for h in raw_header) or "(empty)"
    if not ids:
        raise ValueError(f"{path}: no person column (email, id, person, employee_id, ...); the header is: {shown}")
    if when is None:
        raise ValueError(
            f"{path}: no termination date column (termination_date, end_date, last_day, ...); the header is: {shown}"
        )
    leavers = []
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        cells = [row[i].strip() for i in ids if i < len(row) and row[i].strip()]
        if not cells:
            raise ValueError(f"{path} row {number}: no person identifier")
        raw = row[when].strip() if when < len(row) else ""
        try:
            end = _day(raw) if raw else None
        except ValueError:
            raise ValueError(f"{path} row {number}: termination date {raw!r} is not a date (YYYY-MM-DD)") from None
        name = row[names].strip() if names is not None and names < len(row) and row[names].strip() else None
        leavers.append(
            Leaver(cells[0], frozenset(c.lower() for c in cells), name, end, False, f"{path.name} row {number}")
        )
    return LeaverList(f"HR leavers file {path.name} ({len(leavers)} rows)", leavers)


def leavers_from_people(people: Iterable[Any], source: str) -> list[Leaver]:
    """People sources' Persons with an end date or marked inactive."""
    out = []
    for person in people:
        if person.end_date is None and person.active:
            continue
        keys = {person.id.lower(), *(e.lower() for e in person.emails)}
        if person.employee_id:
            keys.add(person.employee_id.lower())
        end = person.end_date.date() if person.end_date else None
        out.append(Leaver(person.id, frozenset(keys), person.name, end, bool(person.active), source))
    return out


def from_sources(sources: list[tuple[str, Any]]) -> LeaverList | None:
    """Leavers from built people sources; None when there are none."""
    if not sources:
        return None
    leavers: list[Leaver] = []
    for label, source in sources:
        leavers.extend(leavers_from_people(source.people(), label))
    return LeaverList(", ".join(label for label, _ in sources) + " (the configured people sources)", leavers)


def reconcile(
    leavers: LeaverList, period: Any, cases: list[tuple[str, str, str | None, datetime | None, bool]]
) -> Reconciliation:
    """Match leavers in ``period`` against ``cases`` (case, person, employee id, termination, follow-up)."""
    index: dict[str, list[tuple[str, datetime | None]]] = {}
    for case, person, employee_id, moment, followup in cases:
        if followup:
            continue
        for key in {person.lower(), (employee_id or "").lower()} - {""}:
            index.setdefault(key, []).append((case, moment))
    out = Reconciliation(leavers.source)
    listed: set[str] = set()
    for leaver in leavers.leavers:
        listed |= leaver.keys
        if leaver.end is not None and not period.contains_day(leaver.end):
            continue
        if leaver.end is None and leaver.active:
            continue
        out.in_period.append(leaver)
        found = {case: moment for key in leaver.keys for case, moment in index.get(key, [])}
        inside = [case for case, moment in found.items() if period.contains(moment)]
        if inside:
            out.matched.append((leaver, inside))
        elif found:
            out.elsewhere.append(
                (leaver, [f"{case} ({m.date().isoformat() if m else 'no date'})" for case, m in found.items()])
            )
        else:
            out.missing.append(leaver)
    seen: set[str] = set()
    for _case, person, employee_id, moment, followup in cases:
        if followup or not period.contains(moment) or person in seen:
            continue
        seen.add(person)
        if person.lower() not in listed and (employee_id or "").lower() not in listed:
            out.unlisted.append(person)
    return out
