"""The auditors' report: each leaver's termination and access-removal times for a period.

Built only from a log that verifies, and only from the entries its newest valid checkpoint
seals. ``build_report`` returns plain data; ``_report_html`` renders it, ``_report_csv``
writes the same rows for spreadsheets.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ReportError
from ._cases import CaseBook, CaseRecord
from ._entry import parse_time
from ._log import ENTRIES, ORIGIN_FILE, TRUSTED_KEYS
from ._merkle import CompactRange, leaf_hash
from ._note import Checkpoint, NoteError, TrustList
from ._reconcile import Reconciliation, reconcile
from ._report_exceptions import Exception_, Finding, exceptions, findings_about
from ._report_owed import OwedLog, OwedRow, owed_rows
from ._verify import load_trust, verify_log

__all__ = [
    "AuditReport",
    "CaseView",
    "Finding",
    "Item",
    "OwedRow",
    "Period",
    "ReportError",
    "build_report",
    "duration",
    "zone_name",
]

REVOKED = ("complete", "awaiting_tasks")  # every account's access removed (a checklist may still be open)


@dataclass(frozen=True)
class Period:
    """Whole UTC days from ``start`` to ``end`` inclusive; None on a side means unbounded."""

    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, start: str | None, end: str | None, names: tuple[str, str] = ("--from", "--to")) -> Period:
        """Dates as YYYY-MM-DD; ValueError with a one-line message naming the option."""
        days: list[date | None] = []
        for name, text in zip(names, (start, end)):
            if text is None or not text.strip():
                days.append(None)
                continue
            try:
                days.append(date.fromisoformat(text.strip()))
            except ValueError:
                raise ValueError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None
        if days[0] and days[1] and days[0] > days[1]:
            raise ValueError(f"{names[0]} {days[0]} is after {names[1]} {days[1]}")
        return cls(days[0], days[1])

    def contains(self, moment: datetime | None) -> bool:
        if moment is None:
            return self.start is None and self.end is None
        day = moment.astimezone(UTC).date()
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    def contains_day(self, day: date) -> bool:
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    @property
    def label(self) -> str:
        if self.start is None and self.end is None:
            return "all time"
        return f"{self.start or 'the beginning'} to {self.end or 'now'} (UTC days, inclusive)"


@dataclass
class Item:
    """One planned account action and its last logged result."""

    system: str
    account_id: str
    account_name: str | None
    kind: str
    result: str | None
    requested_at: str | None = None
    responded_at: str | None = None
    read_back: bool | None = None
    observed: Any = None
    detail: str | None = None
    reference: str | None = None
    error: str | None = None
    attempts: int | None = None
    seq: int | None = None

    @property
    def completed_at(self) -> str | None:
        """When the system answered the write that the read-back then confirmed."""
        return self.responded_at if self.result == "verified" else None


@dataclass
class Task:
    """A checklist task of a case (issue #11's ``tasks``) and what was done about it."""

    id: str
    title: str | None = None
    owner: str | None = None
    due_at: str | None = None
    blocking: bool = False
    status: str = "open"
    by: str | None = None
    at: str | None = None
    note: str | None = None
    reminders: list[str] = field(default_factory=list)
    equipment: dict[str, Any] | None = None  # what a return page recorded: condition, asset tag, photo hash


@dataclass
class CaseView:
    """One case as the report shows it."""

    case: str
    person: str
    employee_id: str | None
    timezone: str
    trigger: str | None
    policy: str | None
    reason: str | None
    status: str
    opened_at: str | None
    closed_at: str | None
    termination_at: str | None
    last_verified_at: str | None
    elapsed_ms: int | None
    deadline: str | None
    items: list[Item]
    protected: list[dict[str, Any]] = field(default_factory=list)
    discovery_errors: dict[str, Any] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)
    checklist: dict[str, Any] | None = None
    undone: list[dict[str, Any]] = field(default_factory=list)
    approved_by: str | None = None
    over_deadline: bool = False
    over_reason: str | None = None
    legal_hold: str | None = None  # no deletion runs while it holds
    recent_setups: list[dict[str, Any]] = field(default_factory=list)  # set up before the end

    @property
    def followup(self) -> bool:
        """A staged follow-up (e.g. deletion 30 days on): kept out of the time-to-revoke figures."""
        return self.trigger == "followup"

    @property
    def revoked(self) -> bool:
        return self.status in REVOKED

    @property
    def time_to_revoke_ms(self) -> int | None:
        """Termination to the last account revoked; None until every account is."""
        return self.elapsed_ms if self.revoked else None


@dataclass
class PersonView:
    id: str
    employee_id: str | None
    timezone: str
    cases: list[CaseView] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def main(self) -> CaseView:
        """The case the person's row shows: the latest non-follow-up one, else the latest."""
        return next((c for c in reversed(self.cases) if not c.followup), self.cases[-1])


@dataclass
class AuditReport:
    """Everything the report shows; times are RFC 3339 UTC strings as logged."""

    period: Period
    sla_seconds: int
    generated_at: datetime
    origin: str
    checkpoint: Checkpoint
    entries_total: int
    unsealed: int
    trust_source: str
    warnings: list[str]
    people: list[PersonView]
    exceptions: list[Exception_]
    findings: list[Finding]
    reconciliation: Reconciliation | None
    sample: list[str] | None = None
    owed: list[OwedRow] = field(default_factory=list)  # actions still owed (or abandoned), oldest first

    @property
    def cases(self) -> list[CaseView]:
        return [c for p in self.people for c in p.cases]

    def summary(self) -> dict[str, Any]:
        """The headline numbers (all computed from ``cases``)."""
        cases = self.cases
        main = [c for c in cases if not c.followup]
        by_status: dict[str, int] = {}
        for c in main:
            by_status[c.status] = by_status.get(c.status, 0) + 1
        timed = [c for c in main if c.revoked and c.elapsed_ms is not None]
        timings = [c.elapsed_ms for c in timed if c.elapsed_ms is not None]
        worst = max(timed, key=lambda c: c.elapsed_ms or 0) if timed else None
        return {
            "people": len({c.person for c in main}),
            "cases": len(main),
            "complete": by_status.get("complete", 0),
            "awaiting_tasks": by_status.get("awaiting_tasks", 0),
            "incomplete": by_status.get("incomplete", 0),
            "open": by_status.get("open", 0),
            "cancelled": by_status.get("cancelled", 0),
            "followups": len(cases) - len(main),
            "timed": len(timed),
            "median_ms": int(statistics.median(timings)) if timings else None,
            "worst_ms": worst.elapsed_ms if worst else None,
            "worst_case": worst.case if worst else None,
            "worst_person": worst.person if worst else None,
            "over_deadline": [c for c in main if c.over_deadline],
        }


# -- building ------------------------------------------------------------------------


def build_report(
    directory: Path,
    trust: TrustList | None = None,
    *,
    period: Period = Period(),
    sla_seconds: int = 86400,
    people: Sequence[str] | None = None,
    leavers: Any = None,
    now: datetime | None = None,
    keep_entries: bool = False,
    trust_source: str | None = None,
) -> AuditReport:
    """Verify the log, then gather the period's cases; ReportError when the log fails or input is wrong.

    ``people`` limits the report to some people (ids or employee ids, e.g. an auditor's sample);
    ``leavers`` is a :class:`~offboard.audit._reconcile.LeaverList` to reconcile against.
    """
    directory = Path(directory)
    now = now or datetime.now(UTC)
    if not (directory / ENTRIES).exists() and not (directory / ORIGIN_FILE).exists():
        raise ReportError(f"no audit log at {directory}", 2)
    if trust is None:
        try:
            trust = load_trust(directory / TRUSTED_KEYS)
        except NoteError as exc:
            raise ReportError(f"the audit log does not verify: {exc}", 1) from None
        trust_source = trust_source or f"{directory / TRUSTED_KEYS} (the log's own copy: pin one out of band)"
    verified = verify_log(directory, trust, sla_seconds=sla_seconds)
    failures = sorted(verified.of("integrity"), key=_weight)
    if failures:
        named = (
            failures[:1] + [p for p in failures[1:] if p.where == "leafhashes.bin"][:1]
        )  # the cache points at the entry
        shown = "; ".join(f"{p.where}: {p.what}" for p in named)
        rest = len(failures) - len(named)
        more = f" (and {rest} more; run 'offboard audit verify')" if rest else ""
        raise ReportError(f"the audit log does not verify: {shown}{more}", 1)
    checkpoint = verified.checkpoint
    if checkpoint is None:
        raise ReportError("the audit log has no signed checkpoint yet: nothing is sealed to report on", 2)
    objects = _sealed_entries(directory, checkpoint)
    unsealed = max(0, verified.size - checkpoint.size)
    warnings = [f"{p.where}: {p.what}" for p in verified.of("warning")]
    gathered = _gather(objects)
    wanted = _wanted(people, gathered.book) if people else None
    views: dict[str, PersonView] = {}
    case_keys: list[tuple[CaseView, datetime | None]] = []
    for record in gathered.book.cases.values():
        view = _case_view(record, gathered, sla_seconds, now)
        moment = parse_time(view.termination_at) or parse_time(view.opened_at)
        case_keys.append((view, moment))
        if wanted is not None and view.person not in wanted:
            continue
        if not period.contains(moment):
            continue
        person = views.get(view.person)
        if person is None:
            person = views[view.person] = PersonView(view.person, view.employee_id, view.timezone)
        person.cases.append(view)
    ordered = sorted(views.values(), key=lambda p: (parse_time(p.main.termination_at) or now, p.id))
    for person in ordered:
        person.cases.sort(key=lambda c: (parse_time(c.termination_at) or now, c.opened_at or ""))
        person.timezone = person.main.timezone
        if keep_entries:
            person.entries = gathered.by_person.get(person.id, [])
    findings = findings_about(
        [p.what for p in verified.of("finding")], {c.case: c.person for p in ordered for c in p.cases}
    )
    report = AuditReport(
        period=period,
        sla_seconds=sla_seconds,
        generated_at=now,
        origin=checkpoint.origin,
        checkpoint=checkpoint,
        entries_total=verified.size,
        unsealed=unsealed,
        trust_source=trust_source or "given",
        warnings=warnings,
        people=ordered,
        exceptions=[],
        findings=findings,
        reconciliation=None,
        sample=sorted(wanted) if wanted is not None else None,
    )
    report.exceptions = exceptions(report, gathered.approvals, wanted, case_keys)
    report.owed = owed_rows(report.cases, gathered.owed, now)
    if leavers is not None:
        report.reconciliation = reconcile(
            leavers, period, [(c.case, c.person, c.employee_id, m, c.followup) for c, m in case_keys]
        )
    return report


def _weight(problem: Any) -> int:
    """Which integrity failures to name first: a bad entry, a checkpoint, then the rest (the leaf-hash cache last)."""
    where = problem.where
    for rank, prefix in enumerate((f"{ENTRIES} line", "checkpoints/", "pinned", ENTRIES)):
        if where.startswith(prefix):
            return rank
    return 5 if where == "leafhashes.bin" else 4


def _sealed_entries(directory: Path, checkpoint: Checkpoint) -> list[dict[str, Any]]:
    """The entries the checkpoint covers, re-hashed: the file must still match what was verified."""
    data = (directory / ENTRIES).read_bytes()
    lines = data.split(b"\n", checkpoint.size)[: checkpoint.size]
    tree = CompactRange()
    for line in lines:
        tree.append(leaf_hash(line))
    if len(lines) != checkpoint.size or tree.root() != checkpoint.root:
        raise ReportError(
            f"the audit log changed while the report was built: {ENTRIES} no longer matches "
            f"checkpoint size {checkpoint.size}; run 'offboard audit verify'",
            1,
        )
    return [json.loads(line) for line in lines]


@dataclass
class _Gathered:
    book: CaseBook
    tasks: dict[str, dict[str, Task]] = field(default_factory=dict)
    undone: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    approved_by: dict[str, str] = field(default_factory=dict)
    by_person: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    employee_ids: dict[str, str] = field(default_factory=dict)
    owed: OwedLog = field(default_factory=OwedLog)


def _gather(objects: list[dict[str, Any]]) -> _Gathered:
    book = CaseBook(keep=True)
    out = _Gathered(book)
    for obj in objects:
        kind = obj.get("type")
        book.add(obj)
        out.owed.add(obj)
        person: dict[str, Any] = obj["person"] if isinstance(obj.get("person"), dict) else {}
        pid = person.get("id")
        if isinstance(pid, str):
            out.by_person.setdefault(pid, []).append(obj)
            if isinstance(person.get("employee_id"), str):
                out.employee_ids.setdefault(pid, person["employee_id"])
        case = obj.get("case")
        if kind == "case_opened" and isinstance(case, str):
            for raw in obj.get("tasks") or []:
                if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                    out.tasks.setdefault(case, {})[raw["id"]] = Task(
                        raw["id"],
                        _text(raw.get("title")),
                        _text(raw.get("owner")),
                        _text(raw.get("due_at")),
                        bool(raw.get("blocking")),
                    )
        elif kind == "task" and isinstance(case, str) and isinstance(obj.get("task"), str):
            task = out.tasks.setdefault(case, {}).setdefault(obj["task"], Task(obj["task"]))
            task.title = _text(obj.get("title")) or task.title
            task.owner = _text(obj.get("owner")) or task.owner
            task.due_at = _text(obj.get("due_at")) or task.due_at
            if "blocking" in obj:
                task.blocking = bool(obj.get("blocking"))
            task.status = _text(obj.get("status")) or "open"
            task.by, task.at = _text(obj.get("by")), _text(obj.get("at")) or _text(obj.get("time"))
            task.note = _text(obj.get("note")) or _text(obj.get("reason"))
            task.equipment = obj["equipment"] if isinstance(obj.get("equipment"), dict) else task.equipment
        elif kind == "equipment_return" and isinstance(case, str) and isinstance(obj.get("equipment"), dict):
            task = out.tasks.setdefault(case, {}).setdefault(str(obj.get("task")), Task(str(obj.get("task"))))
            task.equipment = {**obj["equipment"], "recorded_at": _text(obj.get("time"))}
        elif kind == "task_reminder" and isinstance(case, str) and isinstance(obj.get("task"), str):
            task = out.tasks.setdefault(case, {}).setdefault(obj["task"], Task(obj["task"]))
            to = obj.get("to")
            to_text = ", ".join(map(str, to)) if isinstance(to, list) else _text(to) or "?"
            task.reminders.append(f"{obj.get('time')}: {obj.get('kind') or 'reminder'} to {to_text}")
        elif kind == "case_undone" and isinstance(case, str):
            out.undone.setdefault(case, []).append(obj)
        elif kind == "approval":
            out.approvals.append(obj)
        elif kind == "sweep" and obj.get("approved_by"):
            for opened in obj.get("opened") or []:
                if isinstance(opened, str):
                    out.approved_by[opened] = str(obj["approved_by"])
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else (None if value is None else str(value))


def _wanted(people: Sequence[str], book: CaseBook) -> set[str]:
    """Person ids for the refs given (id or employee id, any case); an unknown ref is an error."""
    index: dict[str, str] = {}
    for record in book.cases.values():
        if record.person is None:
            continue
        index.setdefault(record.person.lower(), record.person)
        person = (record.opened or {}).get("person")
        if isinstance(person, dict) and isinstance(person.get("employee_id"), str):
            index.setdefault(person["employee_id"].lower(), record.person)
    out = set()
    for ref in people:
        found = index.get(ref.strip().lower())
        if found is None:
            raise ReportError(f"no case in the audit log for person {ref!r}", 2)
        out.add(found)
    return out


def zone_name(value: Any) -> str:
    """A usable IANA zone name (UTC when missing or unknown)."""
    if isinstance(value, str) and value:
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            return "UTC"
    return "UTC"


def _case_view(record: CaseRecord, gathered: _Gathered, sla_seconds: int, now: datetime) -> CaseView:
    opened, closed = record.opened or {}, record.closed or {}
    person: dict[str, Any] = opened["person"] if isinstance(opened.get("person"), dict) else {}
    items = []
    for (system, account, kind), action in record.final().items():
        action = action if isinstance(action, dict) else {}
        name = (action.get("account") or {}).get("name") if action else record.names.get((system, account, kind))
        verification: dict[str, Any] = action["verification"] if isinstance(action.get("verification"), dict) else {}
        items.append(
            Item(
                system=system,
                account_id=account,
                account_name=_text(name),
                kind=kind,
                result=_text(action.get("result")),
                requested_at=_text(action.get("requested_at")),
                responded_at=_text(action.get("responded_at")),
                read_back=verification.get("ok") if isinstance(verification.get("ok"), bool) else None,
                observed=verification.get("observed"),
                detail=_text(verification.get("detail")),
                reference=_text(action.get("reference")),
                error=_text(action.get("error")),
                attempts=action.get("attempts") if isinstance(action.get("attempts"), int) else None,
                seq=action.get("seq"),
            )
        )
    pid = record.person or "?"
    view = CaseView(
        case=record.case,
        person=pid,
        employee_id=_text(person.get("employee_id")) or gathered.employee_ids.get(pid),
        timezone=zone_name(person.get("timezone")),
        trigger=_text(opened.get("trigger")),
        policy=_text(opened.get("policy")),
        reason=_text(opened.get("reason")),
        status=record.status() or "open",
        opened_at=_text(opened.get("time")),
        closed_at=_text(closed.get("time")),
        termination_at=record.termination_at(),
        last_verified_at=record.last_verified_at(),
        elapsed_ms=record.elapsed_ms(),
        deadline=record.deadline(sla_seconds),
        items=items,
        protected=[p for p in opened.get("protected") or [] if isinstance(p, dict)],
        discovery_errors=dict(opened.get("discovery_errors") or {})
        if isinstance(opened.get("discovery_errors"), dict)
        else {},
        tasks=list(gathered.tasks.get(record.case, {}).values()),
        checklist=closed.get("checklist") if isinstance(closed.get("checklist"), dict) else None,
        undone=gathered.undone.get(record.case, []),
        approved_by=gathered.approved_by.get(record.case),
        legal_hold=_text(opened.get("legal_hold")),
        recent_setups=[r for r in opened.get("recent_setups") or [] if isinstance(r, dict)],
    )
    view.over_deadline, view.over_reason = _over(view, sla_seconds, now)
    return view


def _over(view: CaseView, sla_seconds: int, now: datetime) -> tuple[bool, str | None]:
    """Whether the case missed the deadline, and why."""
    if view.followup or view.status == "cancelled":
        return False, None
    if view.elapsed_ms is not None and view.elapsed_ms > sla_seconds * 1000:
        last = "the last account" if view.revoked else "the latest verified account"
        return (
            True,
            f"{last} was revoked {duration(view.elapsed_ms)} after termination (deadline "
            f"{duration(sla_seconds * 1000)})",
        )
    deadline = parse_time(view.deadline)
    if not view.revoked and deadline is not None and now > deadline:
        what = "still open" if view.status == "open" else f"closed {view.status}"
        return True, f"{what}: not every account was revoked by the deadline"
    return False, None


def duration(ms: int | None) -> str:
    """A readable duration: ``4 min 12 s``, ``1 d 3 h``; an em dash for None."""
    if ms is None:
        return "\u2014"
    sign, ms = ("-" if ms < 0 else ""), abs(ms)
    seconds = ms // 1000
    days, rest = divmod(seconds, 86400) if seconds >= 172800 else (0, seconds)  # "30 h", then "2 d 4 h"
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        parts = [f"{days} d", f"{hours} h"] + ([f"{minutes} min"] if minutes else [])
    elif hours:
        parts = [f"{hours} h"] + ([f"{minutes} min"] if minutes or secs else [])
    elif minutes:
        parts = [f"{minutes} min", f"{secs} s"]
    else:
        parts = [f"{seconds}.{ms % 1000:03d} s" if seconds < 10 else f"{secs} s"]
    return sign + " ".join(parts)
