"""The auditors' report as CSV: one row per planned account action, for spreadsheets.

Cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) get a leading apostrophe, so a value from a system cannot become a formula.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from zoneinfo import ZoneInfo

from ._entry import parse_time
from ._report import AuditReport, zone_name

__all__ = ["CSV_COLUMNS", "csv_rows", "local_time", "report_csv"]

CSV_COLUMNS = (
    "person",
    "employee_id",
    "time_zone",
    "case",
    "trigger",
    "policy",
    "case_status",
    "termination_at_utc",
    "termination_at_local",
    "system",
    "account_id",
    "account_name",
    "action",
    "result",
    "requested_at_utc",
    "completed_at_utc",
    "completed_at_local",
    "read_back_ok",
    "read_back_observed",
    "read_back_detail",
    "reference",
    "error",
    "attempts",
    "seq",
    "all_revoked_at_utc",
    "time_to_revoke_seconds",
    "deadline_utc",
    "over_deadline",
    "undone_by",
    "undone_at_utc",
    "owed",
    "owed_since_utc",
    "owed_age_seconds",
    "owed_retries",
    "owed_escalated_at_utc",
    "abandoned_by",
    "abandoned_at_utc",
)


def local_time(text: str | None, zone: str) -> str:
    """``text`` (RFC 3339) in ``zone`` as ``YYYY-MM-DD HH:MM:SS+HH:MM``; empty when missing."""
    moment = parse_time(text)
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(zone_name(zone))).isoformat(timespec="seconds").replace("T", " ")


def _safe(value: Any) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, str):
        value = (
            json.dumps(value, sort_keys=True, separators=(",", ":")) if isinstance(value, (dict, list)) else str(value)
        )
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def csv_rows(report: AuditReport) -> list[list[str]]:
    """One row per planned action (a case with none still gets one row)."""
    rows = []
    owed = {(r.case, r.system, r.account_id, r.kind): r for r in report.owed}
    for case in report.cases:
        zone = case.timezone
        head = [
            case.person,
            case.employee_id,
            zone,
            case.case,
            case.trigger,
            case.policy,
            case.status,
            case.termination_at,
            local_time(case.termination_at, zone),
        ]
        tail = [
            case.last_verified_at if case.revoked else None,
            None if case.time_to_revoke_ms is None else f"{case.time_to_revoke_ms / 1000:.3f}",
            case.deadline,
            None if case.followup else case.over_deadline,
        ]
        undo = case.undone[-1] if case.undone else {}
        tail += [undo.get("actor"), undo.get("time")]
        items: list[Any] = list(case.items) or [None]
        for item in items:
            debt = None if item is None else owed.get((case.case, item.system, item.account_id, item.kind))
            if item is None:
                middle: list[Any] = [None] * 15
            else:
                middle = [
                    item.system,
                    item.account_id,
                    item.account_name,
                    item.kind,
                    item.result,
                    item.requested_at,
                    item.completed_at,
                    local_time(item.completed_at, zone),
                    item.read_back,
                    item.observed,
                    item.detail,
                    item.reference,
                    item.error,
                    item.attempts,
                    item.seq,
                ]
            debts: list[Any] = [None] * 7
            if debt is not None:
                debts = [
                    debt.state,
                    debt.first_failed_at,
                    None if debt.age_ms is None else f"{debt.age_ms / 1000:.3f}",
                    debt.retries,
                    debt.escalated_at,
                    debt.abandoned_by,
                    debt.abandoned_at,
                ]
            rows.append([_safe(v) for v in head + middle + tail + debts])
    return rows


def report_csv(report: AuditReport) -> str:
    """The report's rows as CSV (header first)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(report))
    return out.getvalue()
