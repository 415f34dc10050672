"""The report's exceptions: incomplete and open cases, skipped accounts, approvals, compliance findings.

One small function per kind of exception, each reading a :class:`~offboard.audit._report.CaseView`
(or the log's approvals); the verifier's findings arrive as text and are read back once,
by :meth:`Finding.read`, into the case and person they are about.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._entry import parse_time

if TYPE_CHECKING:
    from ._report import AuditReport, CaseView, Item

__all__ = ["Exception_", "Finding", "exceptions", "findings_about"]

#: Verifier findings the report already shows in its own words (over the deadline, incomplete, open).
SHOWN_ELSEWHERE = ("SLA missed", "closed incomplete", "opened but never closed")
NO_FINAL_RESULT = "has no final result"  # a planned action's finding: the case's own rows show it


@dataclass
class Exception_:
    """An incomplete case, a skipped protected account, an approval, a finding..."""

    kind: str
    detail: str
    case: str | None = None
    person: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class Finding:
    """A compliance finding of the verifier; ``case`` (and its ``person``) when it is about one case."""

    text: str  # as the verifier words it
    case: str | None = None
    what: str = ""  # what it says of the case, without the "case ID (person P): " it starts with
    person: str | None = None

    @classmethod
    def read(cls, text: str) -> Finding:
        """The one place that reads a verifier finding back: ``case ID (person P): what`` is about case ID."""
        if not text.startswith("case "):
            return cls(text, None, text)
        return cls(text, text[5:].split(" ", 1)[0].rstrip(":"), text.split(": ", 1)[-1])

    @property
    def shown_elsewhere(self) -> bool:
        """Whether the report already shows it in its own words (over the deadline, incomplete, open, no result)."""
        return self.what.startswith(SHOWN_ELSEWHERE) or self.what.endswith(NO_FINAL_RESULT)

    def __str__(self) -> str:
        return self.text


def findings_about(texts: list[str], people: dict[str, str]) -> list[Finding]:
    """The verifier's findings about the reported cases (``people``: case -> person), and those about no case."""
    out = []
    for finding in map(Finding.read, texts):
        if finding.case is None:
            out.append(finding)
        elif finding.case in people:
            out.append(dataclasses.replace(finding, person=people[finding.case]))
    return out


# -- exceptions: incomplete cases, skipped accounts, approvals, findings... -----------


def exceptions(
    report: AuditReport,
    approvals: list[dict[str, Any]],
    wanted: set[str] | None,
    case_keys: list[tuple[CaseView, datetime | None]],
) -> list[Exception_]:
    """Each case's exceptions in report order, then logged approvals, findings, and sampled people without a case."""
    out = [x for case in report.cases for x in _case_exceptions(case)]
    out.extend(_approvals(report, approvals, wanted))
    out.extend(_finding_exceptions(report.findings))
    if wanted is not None:
        out.extend(_unsampled(wanted - {p.id for p in report.people}, case_keys))
    return out


def _case_exceptions(case: CaseView) -> Iterator[Exception_]:
    by_status = _BY_STATUS.get(case.status)
    if by_status is not None:
        yield from by_status(case)
    for kind in _OF_EVERY_CASE:
        yield from kind(case)


def _exception(case: CaseView, kind: str, detail: str, at: str | None = None) -> Exception_:
    return Exception_(kind, detail, case.case, case.person, at)


def _account(item: Item) -> str:
    return f"{item.system} {item.account_name or item.account_id} {item.kind}"


def _incomplete(case: CaseView) -> Iterator[Exception_]:
    """Each account action that did not end verified, or why the case closed incomplete without one."""
    bad = [i for i in case.items if i.result != "verified"]
    for item in bad:
        why = item.error or item.detail or item.result or "no result logged"
        yield _exception(
            case, "incomplete", f"{_account(item)}: {item.result or 'no result'} ({why})", item.responded_at
        )
    if not bad:
        failed = "; ".join(f"{s}: discovery failed" for s in case.discovery_errors)
        why = failed or "no account action failed (see the case's reasons)"
        yield _exception(case, "incomplete", f"closed incomplete: {why}", case.closed_at)


def _open(case: CaseView) -> Iterator[Exception_]:
    final = ("verified", "failed", "unverified", "skipped", "undone")
    missing = [i for i in case.items if i.result not in final]
    yield _exception(
        case,
        "open",
        f"opened but not closed in the sealed log; {len(missing)} of {len(case.items)} actions without a final result",
        case.opened_at,
    )


def _checklist_open(case: CaseView) -> Iterator[Exception_]:
    blocking = [t for t in case.tasks if t.blocking and t.status == "open"]
    count = (case.checklist or {}).get("blocking_open", len(blocking))
    titles = ": " + ", ".join(t.title or t.id for t in blocking) if blocking else ""
    yield _exception(
        case,
        "checklist open",
        f"every account was revoked; {count} blocking checklist task(s) still open{titles}",
        case.closed_at,
    )


def _cancelled(case: CaseView) -> Iterator[Exception_]:
    for undo in case.undone or [{}]:
        actor = undo.get("actor") or "unknown"
        restored = ", ".join(undo.get("restored") or []) or "nothing"
        yield _exception(case, "cancelled", f"undone by {actor}; restored: {restored}", undo.get("time"))


def _skipped(case: CaseView) -> Iterator[Exception_]:
    if case.status == "incomplete":  # already listed as the case's incomplete actions
        return
    for item in case.items:
        if item.result == "skipped":
            why = item.error or item.detail or "no reason logged"
            yield _exception(case, "skipped", f"{_account(item)} skipped: {why}", item.responded_at)


def _protected(case: CaseView) -> Iterator[Exception_]:
    for protected in case.protected:
        account = protected.get("account")
        account = account if isinstance(account, dict) else {}
        yield _exception(
            case,
            "protected account skipped",
            f"{protected.get('system')} {account.get('name') or account.get('id')}: "
            f"{protected.get('reason') or 'no reason logged'}",
            case.opened_at,
        )


def _discovery_errors(case: CaseView) -> Iterator[Exception_]:
    for system, error in case.discovery_errors.items():
        yield _exception(case, "discovery error", f"{system}: {error}", case.opened_at)


def _sweep_approval(case: CaseView) -> Iterator[Exception_]:
    if case.approved_by:
        detail = f"opened by a sweep approved by {case.approved_by}: {case.reason or ''}".rstrip(": ")
        yield _exception(case, "approval", detail, case.opened_at)


_BY_STATUS: dict[str, Callable[[CaseView], Iterator[Exception_]]] = {
    "incomplete": _incomplete,
    "open": _open,
    "awaiting_tasks": _checklist_open,
    "cancelled": _cancelled,
}
_OF_EVERY_CASE: tuple[Callable[[CaseView], Iterator[Exception_]], ...] = (
    _skipped,
    _protected,
    _discovery_errors,
    _sweep_approval,
)


def _approvals(report: AuditReport, approvals: list[dict[str, Any]], wanted: set[str] | None) -> Iterator[Exception_]:
    """Logged approvals naming a reported person, or, in a report of everyone, made during the period."""
    persons = {p.id for p in report.people}
    for approval in approvals:
        named = [p for p in approval.get("people") or [] if p in persons]
        if not named and (wanted is not None or not report.period.contains(parse_time(approval.get("time")))):
            continue
        reasons = "; ".join(map(str, approval.get("reasons") or [])) or "no reason logged"
        who = f" for {len(approval.get('people') or [])} people" if approval.get("people") else ""
        yield Exception_(
            "approval",
            f"{approval.get('scope') or 'action'}{who} approved by {approval.get('approver')}: {reasons}",
            None,
            ", ".join(named) or None,
            approval.get("time"),
        )


def _finding_exceptions(findings: list[Finding]) -> Iterator[Exception_]:
    """Findings about a reported case that the report does not already show in its own words."""
    for finding in findings:
        if finding.case is not None and not finding.shown_elsewhere:
            yield Exception_("finding", finding.what, finding.case, finding.person)


def _unsampled(people: set[str], case_keys: list[tuple[CaseView, datetime | None]]) -> Iterator[Exception_]:
    """Sampled people with no case in the period, and when their cases were."""
    for pid in sorted(people):
        elsewhere = [
            f"{c.case} ({(m.date().isoformat() if m else 'no date')})" for c, m in case_keys if c.person == pid
        ]
        yield Exception_("sampled, no case in the period", "cases at other times: " + ", ".join(elsewhere), None, pid)
