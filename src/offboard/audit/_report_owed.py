"""The auditors' report section on owed work: each account action a case still owes, and for how long.

An action is *owed* while its last result is ``failed`` or ``unverified`` in a case closed
``incomplete`` (the engine retries it: ``engine/_owed.py``). Everything here comes from the log:
the first ``action`` entry that failed or could not be verified (when it was first owed), the
action's ``attempts``, the ``owed_retry`` entries naming it (retries of the owed work), the
``owed_escalated`` entry (notified after ``cases.escalate_after``) and the ``owed_abandoned`` entry
(someone gave up on it, with who and why; its last result is then ``skipped``). The age of work still
owed runs to the report's generation; that of abandoned work, to its abandonment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from ._entry import parse_time

if TYPE_CHECKING:
    from ._report import CaseView

__all__ = ["OwedLog", "OwedRow", "owed_rows", "owed_section"]

FAILED = ("failed", "unverified")
Key = tuple[str, str, str, str]  # case, system, account id, kind


@dataclass
class OwedRow:
    """One owed (or abandoned) action of a case in the report."""

    case: str
    person: str
    system: str
    account_id: str
    account: str  # its name, else its id
    kind: str
    result: str  # failed, unverified, or skipped when abandoned
    state: str  # owed | abandoned
    first_failed_at: str | None
    age_ms: int | None
    attempts: int | None
    retries: int
    escalated_at: str | None
    abandoned_at: str | None = None
    abandoned_by: str | None = None
    why: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class OwedLog:
    """What the log says about owed work, gathered in one pass over the sealed entries."""

    first_failed: dict[Key, str] = field(default_factory=dict)
    retries: dict[Key, int] = field(default_factory=dict)
    escalated: dict[Key, str] = field(default_factory=dict)
    abandoned: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def add(self, obj: dict[str, Any]) -> None:
        kind, case = obj.get("type"), obj.get("case")
        if not isinstance(case, str):
            return
        if kind == "action" and obj.get("result") in FAILED and isinstance(obj.get("time"), str):
            self.first_failed.setdefault(_key(case, obj), obj["time"])
        elif kind == "owed_retry":
            for ref in _refs(obj):
                self.retries[_key(case, ref)] = self.retries.get(_key(case, ref), 0) + 1
        elif kind == "owed_escalated" and isinstance(obj.get("time"), str):
            for ref in _refs(obj):
                self.escalated.setdefault(_key(case, ref), obj["time"])
        elif kind == "owed_abandoned":
            self.abandoned[_key(case, obj)] = obj


def _refs(obj: dict[str, Any]) -> Iterable[dict[str, Any]]:
    return [r for r in obj.get("actions") or [] if isinstance(r, dict)]


def _key(case: str, obj: dict[str, Any]) -> Key:
    account = obj["account"] if isinstance(obj.get("account"), dict) else {}
    return (case, str(obj.get("system")), str(account.get("id")), str(obj.get("kind")))


def _ms(start: str | None, end: datetime | None) -> int | None:
    began = parse_time(start)
    if began is None or end is None:
        return None
    return int((end - began).total_seconds() * 1000)


def owed_rows(cases: Iterable[CaseView], log: OwedLog, now: datetime) -> list[OwedRow]:
    """Every owed or abandoned action of ``cases``, oldest first."""
    rows = []
    for case in cases:
        for item in case.items:
            key = (case.case, item.system, item.account_id, item.kind)
            gave_up = log.abandoned.get(key) if item.result == "skipped" else None
            if gave_up is None and not (case.status == "incomplete" and item.result in FAILED):
                continue
            first = log.first_failed.get(key)
            abandoned_at = gave_up.get("time") if gave_up else None
            rows.append(
                OwedRow(
                    case=case.case,
                    person=case.person,
                    system=item.system,
                    account_id=item.account_id,
                    account=item.account_name or item.account_id,
                    kind=item.kind,
                    result=item.result or "",
                    state="abandoned" if gave_up else "owed",
                    first_failed_at=first,
                    age_ms=_ms(first, parse_time(abandoned_at) if gave_up else now),
                    attempts=item.attempts,
                    retries=log.retries.get(key, 0),
                    escalated_at=log.escalated.get(key),
                    abandoned_at=abandoned_at,
                    abandoned_by=str(gave_up.get("by")) if gave_up else None,
                    why=str(gave_up.get("reason")) if gave_up else (item.error or item.detail),
                )
            )
    return sorted(rows, key=lambda r: (r.first_failed_at or "", r.case, r.system, r.account, r.kind))


def owed_section(rows: list[OwedRow], person_href: Callable[[str], str], duration: Callable[[int | None], str]) -> str:
    """The section's HTML: how many, then one row per owed or abandoned action."""
    if not rows:
        return '<p class="none">No work owed: every action of every case in the period was verified or undone.</p>'
    owed = [r for r in rows if r.state == "owed"]
    escalated = sum(r.escalated_at is not None for r in owed)
    oldest = max((r.age_ms or 0 for r in owed), default=0)
    lead = (
        f"<p>{len(owed)} action(s) still owed ({escalated} escalated"
        + (f"; the oldest for {escape(duration(oldest))}" if owed else "")
        + f"), {len(rows) - len(owed)} abandoned.</p>"
    )
    head = ["Case", "Person", "System", "Account", "Action", "State", "First failed", "Age", "Attempts", "Retries"]
    head += ["Escalated", "Abandoned by", "Why"]
    body = []
    for r in rows:
        state = f"<strong>{escape(r.state)}</strong> ({escape(r.result)})"
        cells = [
            f"<code>{escape(r.case)}</code>",
            f'<a href="{escape(person_href(r.person))}">{escape(r.person)}</a>',
            escape(r.system),
            escape(r.account),
            escape(r.kind),
            state,
            escape(r.first_failed_at or "not logged"),
            escape(duration(r.age_ms)),
            escape("" if r.attempts is None else str(r.attempts)),
            str(r.retries),
            escape(r.escalated_at or "no"),
            escape(f"{r.abandoned_by} at {r.abandoned_at}" if r.abandoned_by else ""),
            escape(r.why or ""),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        lead
        + '<table class="owed"><caption>Owed and abandoned actions, oldest first</caption><thead><tr>'
        + "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )
