"""Checklist tasks: the steps of an offboarding no API can do, carried in the case with the same proof.

When a case opens, its policy's ``tasks`` (those for the person's type) and one return
task per loaned item become the case's checklist, each due on a day relative to the
person's last day, at ``tasks.due_time`` in the person's time zone. People close tasks
with ``offboard tasks done`` or ``skip``; every change is an audit entry. A case whose
accounts are all verified but whose blocking tasks are open is ``awaiting_tasks``, and
becomes ``complete`` when the last one closes. Reminders go through the notifiers once
when a task comes due and once when it is overdue.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..config._durations import aware as _aware
from ..config._durations import iso
from ..config._logging import get_logger
from ..config._policy import Policy, parse_duration, parse_offset
from ..errors import ConfigError, TaskError
from ..models import CaseStatus, Equipment, Person, TaskStatus

__all__ = [
    "TaskError",
    "TaskSpec",
    "checklist",
    "checklist_for",
    "not_before",
    "equipment_for",
    "task_rows",
    "list_tasks",
    "counts",
    "close_task",
    "send_reminders",
]

log = get_logger("offboard.tasks")
OPEN, DONE, SKIPPED = TaskStatus.OPEN.value, TaskStatus.DONE.value, TaskStatus.SKIPPED.value
#: Reminders and listings leave out the tasks of cases that were undone.
INACTIVE_CASES = (CaseStatus.CANCELLED,)


@dataclass(frozen=True)
class TaskSpec:
    """One checklist task before it is stored."""

    id: str
    title: str
    owner: str
    due_at: datetime  # UTC
    due_date: str  # the local date, ISO
    timezone: str
    blocking: bool
    source: str = "policy"  # policy | equipment
    asset: Equipment | None = None

    def to_entry(self) -> dict[str, Any]:
        """How the task appears in the case_opened audit entry."""
        entry: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "owner": self.owner,
            "due_at": iso(self.due_at),
            "due_date": self.due_date,
            "timezone": self.timezone,
            "blocking": self.blocking,
        }
        if self.asset is not None:
            entry["asset"] = {
                "asset_tag": self.asset.asset_tag,
                "kind": self.asset.kind,
                "loaned_on": self.asset.loaned_on,
            }
        return entry


# -- what a case's checklist is ---------------------------------------------------------


def _zone(person: Person) -> ZoneInfo:
    try:
        return ZoneInfo(person.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone; using UTC for due dates", person=person.id, timezone=person.timezone)
        return ZoneInfo("UTC")


def last_day(person: Person, termination: datetime) -> Any:
    """The person's last day, a local date: the earlier of the end date and the termination."""
    zone = _zone(person)
    end = _aware(termination)
    if person.end_date is not None:
        end_date = person.end_date if person.end_date.tzinfo else person.end_date.replace(tzinfo=zone)
        end = min(end, end_date)
    return end.astimezone(zone).date()


def checklist(
    policy: Policy,
    person: Person,
    termination: datetime,
    equipment: Iterable[Equipment] = (),
    due_time: str = "17:00",
    problem: str | None = None,
) -> list[TaskSpec]:
    """The tasks ``policy`` asks for ``person`` whose termination is ``termination``.

    ``problem`` says why the equipment list could not be read: a blocking task then asks for it
    to be checked by hand (the revocation goes ahead; the checklist keeps the gap in view).
    """
    zone, day, at = _zone(person), last_day(person, termination), time.fromisoformat(due_time)
    items = list(equipment)

    def due(offset: str) -> tuple[datetime, str]:
        date = day + parse_offset(offset)
        return datetime.combine(date, at, tzinfo=zone).astimezone(UTC), date.isoformat()

    specs = []
    for rule in policy.tasks:
        if person.type not in rule.person_types or (rule.when == "equipment" and not items):
            continue
        specs.append(TaskSpec(rule.id, rule.title, rule.owner, *due(rule.due), zone.key, rule.blocking))
    returns = policy.equipment
    if returns is None:  # the policy takes nothing back (a leave of absence)
        return specs
    for item in items:
        title = returns.title.format(
            asset_tag=item.asset_tag,
            kind=item.kind,
            loaned_on=item.loaned_on or "an unknown date",
            description=item.description,
        )
        specs.append(
            TaskSpec(
                f"return-{_slug(item.asset_tag)}",
                title,
                returns.owner,
                *due(returns.due),
                zone.key,
                returns.blocking,
                "equipment",
                item,
            )
        )
    if problem is not None:
        specs.append(
            TaskSpec(
                "equipment-list",
                f"Find out by hand what the person has on loan and get it back: the "
                f"equipment list could not be read ({problem})",
                returns.owner,
                *due(returns.due),
                zone.key,
                True,
                "equipment",
            )
        )
    return specs


def checklist_for(config: Any, policy: Policy, person: Person, termination: datetime) -> list[TaskSpec]:
    """:func:`checklist` with the person's equipment; an unreadable equipment list never stops a revocation."""
    try:
        items, problem = equipment_for(config, person), None
    except ConfigError as exc:
        items, problem = list(person.equipment), str(exc)
        log.error(
            "the equipment list could not be read; revoking anyway, with a task to check by hand",
            person=person.id,
            error=problem,
        )
    return checklist(policy, person, termination, items, config.tasks.due_time, problem)


def not_before(specs: list[TaskSpec], opened: datetime, settings: Any) -> list[TaskSpec]:
    """``specs`` with none due sooner than ``settings.min_notice`` after ``opened`` (a case that opens late).

    A task that would be due sooner, or is already past, is due at the first ``settings.due_time``
    (in its own time zone) at least ``min_notice`` after the case opens: the people who own it get
    that much time, and a new case never starts with overdue tasks.
    """
    earliest = _aware(opened) + parse_duration(settings.min_notice)
    at = time.fromisoformat(settings.due_time)
    out = []
    for spec in specs:
        if spec.due_at >= earliest:
            out.append(spec)
            continue
        zone = ZoneInfo(spec.timezone)
        date = earliest.astimezone(zone).date()
        due = datetime.combine(date, at, tzinfo=zone)
        if due < earliest:
            date += timedelta(days=1)
            due = datetime.combine(date, at, tzinfo=zone)
        out.append(replace(spec, due_at=due.astimezone(UTC), due_date=date.isoformat()))
    return out


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.strip().lower()).strip("-")[:90] or "item"


_FILES: dict[tuple[str, int], dict[str, list[Equipment]]] = {}


def equipment_for(config: Any, person: Person) -> list[Equipment]:
    """What ``person`` has on loan: from the people source, plus ``tasks.equipment`` (one entry per asset tag)."""
    items = {e.asset_tag: e for e in person.equipment}
    if config.tasks.equipment:
        path = Path(config.tasks.equipment).expanduser()
        if not path.is_absolute():
            path = (config.source.parent if config.source else Path.cwd()) / path
        by_person = _equipment_file(path)
        for key in {person.id.lower(), *person.emails, (person.employee_id or "").lower()} - {""}:
            for item in by_person.get(key, ()):
                items.setdefault(item.asset_tag, item)
    return list(items.values())


def _equipment_file(path: Path) -> dict[str, list[Equipment]]:
    """The equipment file by person key (lowercased); cached until the file changes."""
    try:
        stamp = path.stat().st_mtime_ns
        cached = _FILES.get((str(path), stamp))
        if cached is not None:
            return cached
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(
            f"cannot read the equipment file: {exc.strerror}", where=f"{path} (tasks.equipment)"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON at line {exc.lineno}: {exc.msg}", where=str(path)) from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ConfigError("the equipment file must be a list of objects", where=str(path))
    else:
        rows = list(csv.DictReader(text.splitlines()))
    out: dict[str, list[Equipment]] = {}
    for number, row in enumerate(rows, start=1):
        person, tag = str(row.get("person") or "").strip(), str(row.get("asset_tag") or "").strip()
        if not person or not tag:
            raise ConfigError(f"row {number} needs a person and an asset_tag", where=str(path))
        loaned = str(row.get("loaned_on") or "").strip() or None
        if loaned is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", loaned):
            raise ConfigError(f"row {number}: loaned_on {loaned!r} is not a date (YYYY-MM-DD)", where=str(path))
        item = Equipment(
            tag, str(row.get("kind") or "device").strip(), loaned, str(row.get("description") or "").strip()
        )
        out.setdefault(person.lower(), []).append(item)
    _FILES.clear()
    _FILES[(str(path), stamp)] = out
    return out


def task_rows(case_id: str, specs: list[TaskSpec], now: datetime) -> list[dict[str, Any]]:
    """Rows for the tasks table, stored with the case in one transaction."""
    return [
        dict(
            case_id=case_id,
            task_id=s.id,
            title=s.title,
            owner=s.owner,
            blocking=s.blocking,
            due_at=s.due_at,
            due_date=s.due_date,
            timezone=s.timezone,
            source=s.source,
            status=OPEN,
            note="",
            created_at=now,
            asset=json.dumps(s.to_entry()["asset"]) if s.asset else None,
        )
        for s in specs
    ]


# -- reading and changing a checklist --------------------------------------------------------


def _row(row: Any, now: datetime) -> dict[str, Any]:
    """A task as ``offboard tasks --json`` prints it (fields documented in docs/checklists.md)."""
    due_at, closed_at = _aware(row["due_at"]), _aware(row["closed_at"])
    return {
        "case": row["case_id"],
        "person": row["person_id"],
        "case_status": row["case_status"],
        "task": row["task_id"],
        "title": row["title"],
        "owner": row["owner"],
        "blocking": bool(row["blocking"]),
        "status": row["status"],
        "due_date": row["due_date"],
        "due_at": iso(due_at),
        "timezone": row["timezone"],
        "overdue": row["status"] == OPEN and due_at <= now,
        "source": row["source"],
        "asset": json.loads(row["asset"]) if row["asset"] else None,
        "closed_by": row["closed_by"],
        "closed_at": iso(closed_at),
        "note": row["note"],
    }


def list_tasks(
    store: Any,
    now: datetime,
    *,
    case_id: str | None = None,
    owner: str | None = None,
    overdue: bool = False,
    include_closed: bool = False,
) -> list[dict[str, Any]]:
    """Tasks by due time: open ones of active cases, or every task of ``case_id``."""
    rows = store.tasks.listing(
        case_id=case_id,
        owner=owner.lower() if owner is not None else None,
        open_only=overdue or (case_id is None and not include_closed),
        due_by=now if overdue else None,
        leave_out=INACTIVE_CASES if case_id is None else (),
    )
    return [_row(r, now) for r in rows]


def counts(store: Any, case_id: str) -> dict[str, int]:
    """The checklist of one case in numbers: total, open, blocking_open, done, skipped."""
    out = {"total": 0, OPEN: 0, "blocking_open": 0, DONE: 0, SKIPPED: 0}
    for status, blocking, n in store.tasks.counts(case_id):
        out["total"] += n
        out[status] = out.get(status, 0) + n
        if status == OPEN and blocking:
            out["blocking_open"] += n
    return out


def close_task(
    engine: Any,
    case_ref: str,
    task_id: str,
    *,
    status: str,
    by: str,
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Mark a task done or skipped (a skip needs its reason in ``note``), record it, and complete the case
    if it was the last blocker. ``extra``: more fields for the audit entry (what a task page recorded)."""
    by, note = (by or "").strip(), (note or "").strip()
    if not by:
        raise TaskError("say who did it: --by NAME is required")
    if len(by) > 200:
        raise TaskError(f"--by is {len(by)} characters long; give a name of at most 200")
    if status == SKIPPED and not note:
        raise TaskError("a skipped task needs a reason: --reason TEXT")
    if status not in (DONE, SKIPPED):
        raise TaskError(f"a task can be closed as done or skipped, not {status!r}")
    case = engine.store.case_by_prefix(case_ref)
    if case is None:
        raise TaskError(f"no case matches {case_ref!r} (see `offboard status`)")
    now = engine.clock()
    row = engine.store.tasks.get(case["id"], task_id)
    if row is None:
        known = engine.store.tasks.ids(case["id"])
        listed = ", ".join(known) if known else "none"
        raise TaskError(f"case {case['id']} has no task {task_id!r} (its tasks: {listed})")
    if row["status"] != OPEN:
        raise TaskError(
            f"task {task_id} of case {case['id']} is already {row['status']} "
            f"(by {row['closed_by']} at {iso(_aware(row['closed_at']))})"
        )
    values = {"status": status, "closed_by": by, "note": note, "closed_at": now}
    engine.record(
        "task",
        case["id"],
        {
            "case": case["id"],
            "person": {"id": case["person_id"]},
            "task": task_id,
            "title": row["title"],
            "owner": row["owner"],
            "blocking": bool(row["blocking"]),
            "due_at": iso(_aware(row["due_at"])),
            "status": status,
            "by": by,
            ("reason" if status == SKIPPED else "note"): note,
            "at": iso(now),
            "overdue": _aware(row["due_at"]) <= now,
            **(extra or {}),
        },
    )
    engine.store.tasks.update(row["id"], **values)
    engine.record.seal()
    result = _row({**row, **values}, now)
    if case["status"] == CaseStatus.AWAITING_TASKS.value and counts(engine.store, case["id"])["blocking_open"] == 0:
        result["case_status"] = engine.close_case(case["id"]).status.value
    return result


# -- reminders ---------------------------------------------------------------------------


def send_reminders(engine: Any, now: datetime | None = None) -> list[dict[str, Any]]:
    """Remind owners once when a task comes due (``tasks.remind_before``) and once when it is overdue."""
    from ._links import links_for
    from ._notifiers import _deliver as deliver
    from ._notifiers import notifiers_for

    now = _aware(now or engine.clock())
    settings = engine.config.tasks
    links = links_for(engine.config)
    soon = now + parse_duration(settings.remind_before)
    rows = engine.store.tasks.to_remind(now, soon, leave_out=INACTIVE_CASES)
    sent = []
    wanted: dict[str, list[Any]] = {}
    for row in rows:
        kind = "overdue" if _aware(row["due_at"]) <= now else "due"
        if kind not in wanted:
            wanted[kind] = notifiers_for(engine.config, f"task_{kind}")
        notifiers = wanted[kind]
        if not notifiers:
            continue
        person = json.loads(row["person"])
        to = _recipients(engine.config, row["owner"], person)
        local = _aware(row["due_at"]).astimezone(ZoneInfo(row["timezone"]))
        who = person.get("name") or person.get("id")
        subject = f"{'Overdue' if kind == 'overdue' else 'Due'}: {row['title']} ({who})"
        text = (
            f'Offboarding of {who}, case {row["case_id"]}: the task "{row["title"]}" (owner: {row["owner"]}'
            f"{', blocks completion' if row['blocking'] else ''}) {'was' if kind == 'overdue' else 'is'} due "
            f"{local:%Y-%m-%d %H:%M} {row['timezone']}.\n"
        )
        reached, errors = [], []
        for notice in _notices(links, row, f"task_{kind}", subject, text, to, now):
            got, failed = deliver(notifiers, notice)
            reached += got
            errors += failed
        if not reached:
            continue  # nobody got it: try again next time
        stamp = {"reminded_overdue_at": now} if kind == "overdue" else {}
        if row["reminded_due_at"] is None:
            stamp["reminded_due_at"] = now  # an overdue reminder also stands for the due one
        fields = {
            "case": row["case_id"],
            "person": {"id": row["person_id"]},
            "task": row["task_id"],
            "kind": kind,
            "owner": row["owner"],
            "due_at": iso(_aware(row["due_at"])),
            "to": reached,
            "errors": errors,
        }
        engine.record("task_reminder", row["case_id"], fields)
        engine.store.tasks.update(row["id"], **stamp)
        sent.append(fields)
    return sent


def _notices(links: Any, row: Any, kind: str, subject: str, text: str, to: list[str], now: datetime) -> list[Any]:
    """The reminder as sent: with a personal link per recipient when links are configured (one notice each),
    else one notice naming the CLI command."""
    from ._notifiers import Notice

    if links is None:
        command = f"When it is done: offboard tasks done {row['case_id']} {row['task_id']} --by YOUR-NAME"
        return [Notice(kind, subject, text + command, tuple(to))]
    # no address: the IT destination gets it, and the link names the owner role
    return [
        Notice(
            kind,
            subject,
            text + f"Open your task (a personal link; do not forward it): "
            f"{links.task_url(row['case_id'], row['task_id'], recipient or row['owner'], now)}",
            (recipient,) if recipient else (),
        )
        for recipient in (to or [""])
    ]


def recipients(config: Any, owner: str, person: dict[str, Any]) -> list[str]:
    """Email addresses for ``owner`` (public name of :func:`_recipients`, for the task pages)."""
    return _recipients(config, owner, person)


def _recipients(config: Any, owner: str, person: dict[str, Any]) -> list[str]:
    """Email addresses for ``owner``: the configured ones, or the person's manager; none means the IT destination."""
    configured = config.tasks.owners.get(owner)
    if configured:
        return list(configured)
    manager = person.get("manager") or ""
    if owner == "manager" and "@" in manager:
        return [manager]
    return []
