"""The report's charts: what each one shows, computed from the report, drawn by ``_charts``.

One rendering serves ``offboard audit report`` and the ``/audit/`` pages: each function returns a
``<figure>`` holding the SVG, the numbers it draws as a small table beside it, and a sentence
saying what it shows (the figure's caption and the chart's accessible name).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape

from . import _charts
from ._charts import Lane, Mark, SystemBar, Week
from ._entry import parse_time
from ._report import AuditReport, CaseView, duration

__all__ = ["case_timeline", "overview", "system_bars", "timed_cases", "weekly", "weeks_shown"]

WEEKS_AFTER_DAYS = 14  # cases per week are drawn when the period spans more than two weeks


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _figure(kind: str, svg: str, caption: str, head: list[str], rows: list[list[str]]) -> str:
    table = (
        f'<table class="chart-numbers" data-numbers="{kind}"><caption>The numbers drawn</caption><thead><tr>'
        + "".join(f'<th scope="col">{_e(h)}</th>' for h in head)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
        + "</tbody></table>"
    )
    return (
        f'<figure class="chart" data-figure="{kind}"><div class="chart-body">{svg}{table}</div>'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _main(report: AuditReport) -> list[CaseView]:
    """The cases the figures count: not follow-ups (as the summary counts them)."""
    return [c for c in report.cases if not c.followup]


def _start(case: CaseView) -> datetime | None:
    return parse_time(case.termination_at) or parse_time(case.opened_at)


def _ms(later: str | None, start: datetime | None) -> int | None:
    moment = parse_time(later)
    if moment is None or start is None:
        return None
    return int((moment - start).total_seconds() * 1000)


def _spell(ms: int) -> str:
    return duration(ms)


# -- time to revoke --------------------------------------------------------------------------


def timed_cases(report: AuditReport) -> list[CaseView]:
    """The fully revoked cases with a time to revoke: the summary's median and worst are over these."""
    return [c for c in _main(report) if c.revoked and c.elapsed_ms is not None]


def distribution(report: AuditReport) -> str:
    s = report.summary()
    sla_ms = report.sla_seconds * 1000
    values = [c.elapsed_ms for c in timed_cases(report) if c.elapsed_ms is not None]
    bins = _charts.bins_for(values, sla_ms)
    if values:
        caption = (
            f"Time to revoke of {len(values)} fully revoked cases: median {duration(s['median_ms'])}, worst "
            f"{duration(s['worst_ms'])}; {sum(b.over for b in bins)} of them over the {duration(sla_ms)} deadline."
        )
    else:
        caption = "Time to revoke: no case in the period had every account revoked, so there is nothing to draw."
    svg = _charts.distribution(values, sla_ms, s["median_ms"], s["worst_ms"], caption, _spell)
    rows = [
        [
            f"{_e(_charts.short(b.start_ms))} to {_e(_charts.short(b.end_ms))}",
            f'<span class="num">{b.count}</span>',
            f'<span class="num">{b.over}</span>',
        ]
        for b in bins
        if b.count
    ]
    rows.append(["<strong>median</strong>", _e(duration(s["median_ms"])), ""])
    rows.append(["<strong>worst</strong>", _e(duration(s["worst_ms"])), ""])
    return _figure("distribution", svg, caption, ["Time to revoke", "Cases", "Over deadline"], rows)


# -- per system ------------------------------------------------------------------------------


@dataclass
class _SystemTimes:
    cases: int = 0
    over: int = 0
    times: list[int] = field(default_factory=list)


def system_bars(report: AuditReport) -> list[SystemBar]:
    """Per system, over the period's timed-or-due cases: median and worst time to its last account revoked.

    A system's time in a case runs from the termination to the last of its accounts the system
    confirmed (the per-system timeline's "System answered" of verified actions); a case counts
    as over the deadline for a system when that time exceeds it, or when the system still has
    an account not revoked after the deadline has passed. Slowest (worst) first.
    """
    sla_ms = report.sla_seconds * 1000
    now = report.generated_at
    found: dict[str, _SystemTimes] = {}
    for case in _main(report):
        if case.status == "cancelled":
            continue
        start = _start(case)
        by_system: dict[str, list[int | None]] = {}
        for item in case.items:
            by_system.setdefault(item.system, []).append(_ms(item.completed_at, start))
        for system, times in by_system.items():
            entry = found.setdefault(system, _SystemTimes())
            entry.cases += 1
            if all(t is not None for t in times):
                took = max(t for t in times if t is not None)
                entry.times.append(took)
                entry.over += took > sla_ms
            elif start is not None and now > start + timedelta(milliseconds=sla_ms):
                entry.over += 1
    rows = [
        SystemBar(
            system,
            entry.cases,
            len(entry.times),
            int(statistics.median(entry.times)) if entry.times else None,
            max(entry.times) if entry.times else None,
            entry.over,
        )
        for system, entry in found.items()
    ]
    return sorted(rows, key=lambda r: (-(r.worst_ms if r.worst_ms is not None else -1), -r.over, r.system))


def systems(report: AuditReport) -> str:
    rows = system_bars(report)
    sla_ms = report.sla_seconds * 1000
    if rows:
        slow = rows[0]
        caption = (
            f"Per system, median and worst time to revoke and the cases over the {duration(sla_ms)} deadline; "
            f"slowest: {slow.system} (worst {duration(slow.worst_ms)}, {slow.over} over)."
        )
    else:
        caption = "Per system: no account actions in the period, so there is nothing to draw."
    svg = _charts.systems(rows, sla_ms, caption, _spell)
    table = [
        [
            f"<code>{_e(r.system)}</code>",
            f'<span class="num">{r.cases}</span>',
            f'<span class="num">{r.revoked}</span>',
            _e(duration(r.median_ms)),
            _e(duration(r.worst_ms)),
            f'<span class="num">{r.over}</span>',
        ]
        for r in rows
    ]
    head = ["System", "Cases", "Revoked", "Median", "Worst", "Over deadline"]
    return _figure("systems", svg, caption, head, table)


# -- over time -------------------------------------------------------------------------------


def _span(report: AuditReport) -> tuple[date, date] | None:
    """The period's first and last day: as chosen, or the cases' own where the period is open."""
    days = [d.date() for d in (_start(c) for c in _main(report)) if d is not None]
    start = report.period.start or (min(days) if days else None)
    end = report.period.end or (max(days) if days else None)
    return (start, end) if start and end else None


def weeks_shown(report: AuditReport) -> bool:
    span = _span(report)
    return span is not None and (span[1] - span[0]).days + 1 > WEEKS_AFTER_DAYS


def weekly(report: AuditReport) -> list[Week]:
    """Cases per week (Monday to Sunday, by termination day) and how many were within or over the deadline.

    Every case the summary counts is in one week; a case neither revoked nor past its deadline
    is in neither ``within`` nor ``over`` (not decided yet), nor is a cancelled one.
    """
    span = _span(report)
    if span is None:
        return []
    first = span[0] - timedelta(days=span[0].weekday())
    counts: dict[date, list[int]] = {}
    monday = first
    while monday <= span[1]:
        counts[monday] = [0, 0, 0]
        monday += timedelta(days=7)
    for case in _main(report):
        start = _start(case)
        if start is None:
            continue
        day = start.date()
        key = day - timedelta(days=day.weekday())
        row = counts.setdefault(key, [0, 0, 0])
        row[0] += 1
        if case.over_deadline:
            row[2] += 1
        elif case.revoked:
            row[1] += 1
    return [Week(str(k), *v) for k, v in sorted(counts.items())]


def weeks(report: AuditReport) -> str:
    rows = weekly(report)
    within, decided = sum(w.within for w in rows), sum(w.within + w.over for w in rows)
    share = f"{within / decided:.0%}" if decided else "no case decided yet"
    caption = (
        f"Cases per week over {len(rows)} weeks ({sum(w.cases for w in rows)} cases) and the share revoked "
        f"within the deadline ({share} overall)."
    )
    svg = _charts.weeks(rows, caption)
    table = [
        [
            f'<time datetime="{_e(w.start)}">{_e(w.start)}</time>',
            f'<span class="num">{w.cases}</span>',
            f'<span class="num">{w.within}</span>',
            f'<span class="num">{w.over}</span>',
            _e("\u2014" if w.share is None else f"{w.share:.0%}"),
        ]
        for w in rows
    ]
    head = ["Week of", "Cases", "Within", "Over", "Share within"]
    return _figure("weeks", svg, caption, head, table)


def overview(report: AuditReport) -> str:
    """The period's charts: time to revoke, per system and, over more than two weeks, per week."""
    parts = [distribution(report), systems(report)]
    if weeks_shown(report):
        parts.append(weeks(report))
    return '<div class="charts">' + "".join(parts) + "</div>"


# -- per person ------------------------------------------------------------------------------


def lanes(case: CaseView) -> list[Lane]:
    """A lane per system (its accounts revoked or failed), then one per checklist task (due and done)."""
    start = _start(case)
    out: list[Lane] = []
    by_system: dict[str, list[Mark]] = {}
    finished: dict[str, list[int | None]] = {}
    for item in case.items:
        done = _ms(item.completed_at, start)
        finished.setdefault(item.system, []).append(done)
        marks = by_system.setdefault(item.system, [])
        who = item.account_name or item.account_id
        if done is not None:
            marks.append(Mark(done, "revoked", f"{item.system} {who}: {item.kind} confirmed after {duration(done)}"))
        else:
            at = _ms(item.responded_at or item.requested_at, start)
            if at is not None:
                marks.append(Mark(at, "failed", f"{item.system} {who}: {item.kind} {item.result or 'no result'}"))
    for system in sorted(by_system):
        times = finished[system]
        end = max(t for t in times if t is not None) if all(t is not None for t in times) else None
        out.append(Lane(system, end, by_system[system]))
    for task in case.tasks:
        name = task.title or task.id
        marks = []
        due = _ms(task.due_at, start)
        if due is not None:
            marks.append(Mark(due, "due", f"{name}: due after {duration(due)}"))
        closed = _ms(task.at, start) if task.status != "open" else None
        if closed is not None:
            marks.append(Mark(closed, "done", f"{name}: {task.status} after {duration(closed)}"))
        out.append(Lane(name, closed, marks, tasks=True))
    return out


def case_timeline(case: CaseView, sla_seconds: int) -> str:
    """One case from termination to the last account revoked, a lane per system, the checklist on the same axis."""
    rows = lanes(case)
    if not rows:
        return ""
    sla_ms = None if case.followup else sla_seconds * 1000
    systems_ = [r for r in rows if not r.tasks]
    open_ = [r.name for r in systems_ if r.end_ms is None]
    what = (
        f"every system revoked by {duration(case.time_to_revoke_ms)} after termination"
        if not open_ and case.time_to_revoke_ms is not None
        else (f"not revoked in {', '.join(open_)}" if open_ else "not every account revoked")
    )
    tasks = sum(r.tasks for r in rows)
    caption = (
        f"Timeline of case {case.case} from termination: {len(systems_)} systems, {what}"
        + (f"; {tasks} checklist tasks, {sum(r.end_ms is not None for r in rows if r.tasks)} closed" if tasks else "")
        + "."
    )
    svg = _charts.timeline(rows, sla_ms, caption, _spell)
    table = [
        [
            _e(r.name),
            "task" if r.tasks else "system",
            _e(_due(r.marks)),
            _e(duration(r.end_ms)) if r.end_ms is not None else '<span class="none">not finished</span>',
        ]
        for r in rows
    ]
    return _figure("timeline", svg, caption, ["Lane", "Kind", "Due after", "Finished after"], table)


def _due(marks: Iterable[Mark]) -> str:
    due = [m.at_ms for m in marks if m.kind == "due"]
    return duration(due[0]) if due else ""
