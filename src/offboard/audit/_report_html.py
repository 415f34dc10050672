"""The auditors' report as one self-contained HTML page: inline CSS, no scripts, prints cleanly.

Semantic tables (captions, ``th`` with ``scope``), text labels rather than colour alone, and
every time in UTC and in the person's own zone. Everything from the log is escaped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from ._entry import parse_time
from ._note import b64
from ._reconcile import Reconciliation
from ._report import AuditReport, CaseView, PersonView, duration, zone_name
from ._report_charts import case_timeline, overview
from ._report_equipment import equipment_section
from ._report_owed import owed_section
from ._report_style import CSS
from ._report_text import entry_text as _entry_text
from ._report_text import how_to_verify as _how_to_verify
from ._report_text import sla_text

__all__ = ["Links", "render_report", "render_person", "render_error", "sla_text", "unsealed_notice"]


@dataclass
class Links:
    """Where a page links to: the CLI's one file uses anchors, the web view its own routes."""

    person: Callable[[str], str]
    evidence: Callable[[str], str] | None = None
    csv: str | None = None
    report: str | None = None
    form: str | None = None  # the report route; shown as a period picker (GET, no scripts)


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def key(value: Any) -> str:
    """An identifier (an address, an account name): on paper it may break anywhere rather than run off."""
    return f'<span class="key">{e(value)}</span>'


def unsealed_notice(report: AuditReport) -> str:
    """Say that the log holds entries the report's checkpoint does not cover yet."""
    return (
        f"{report.unsealed} entries after checkpoint size {report.checkpoint.size} are not yet sealed; "
        "they appear once sealed."
    )


def when(text: Any, zone: str = "UTC") -> str:
    """A logged time in UTC and, below it, in ``zone``."""
    if isinstance(text, str) and isinstance(zone, str):
        return _when(text, zone)  # a person's times recur in their row, case facts and charts' tables
    return _when.__wrapped__(text, zone)


def clear_caches() -> None:
    """Forget the formatted times kept between pages (for benchmarks and tests)."""
    _when.cache_clear()


@lru_cache(maxsize=16384)
def _when(text: Any, zone: str) -> str:
    moment = parse_time(text)
    if moment is None:
        return '<span class="none">\u2014</span>'
    utc = moment.astimezone(UTC)
    stamp = e(utc.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
    # the day, the time and the zone name may go on lines of their own in a narrow column
    out = f'<time datetime="{stamp}">{utc:%Y-%m-%d} <span class="t">{utc:%H:%M:%S} UTC</span></time>'
    zone = zone_name(zone)
    if zone != "UTC":
        local = moment.astimezone(ZoneInfo(zone))
        out += (
            f'<span class="local">{local:%Y-%m-%d} <span class="t">{local:%H:%M:%S} {e(local.tzname())}</span> '
            f'<span class="t">({e(zone)})</span></span>'
        )
    return out


def tag(text: str, kind: str) -> str:
    return f'<span class="tag {kind}">{e(text)}</span>'


STATUS = {"complete": "good", "awaiting_tasks": "warn", "incomplete": "bad", "open": "bad", "cancelled": "warn"}


def _ttr(case: CaseView) -> str:
    if case.revoked or case.elapsed_ms is None:
        return duration(case.time_to_revoke_ms)
    return "not every account revoked"


def status_tag(status: str) -> str:
    label = {"awaiting_tasks": "accounts revoked, checklist open"}.get(status, status)
    return tag(label, STATUS.get(status, "warn"))


def deadline_tag(case: CaseView) -> str:
    if case.followup:
        return tag("follow-up (not timed)", "none")
    if case.status == "cancelled":
        return tag("cancelled", "none")
    if case.over_deadline:
        return tag("OVER DEADLINE", "bad")
    if case.revoked:
        return tag("within deadline", "good")
    return tag("not yet due", "warn")


def _table(caption: str, head: list[str], rows: list[list[str]], *, cls: str = "", empty: str = "None.") -> str:
    if not rows:
        return f'<p class="none">{e(caption)}: {e(empty)}</p>' if caption else f'<p class="none">{e(empty)}</p>'
    out = [f"<table{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>"]
    if caption:
        out.append(f"<caption>{e(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f'<th scope="col">{e(h)}</th>' for h in head) + "</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _facts(pairs: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _page(title: str, body: str, generated: str = "") -> str:
    from .. import __version__

    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="offboard {e(__version__)}"><title>{e(title)}</title>'
        f"<style>{CSS}</style></head><body>{body}"
        f"<footer>Generated by offboard {e(__version__)}{(' at ' + generated) if generated else ''}. "
        "Every figure above is computed from the signed audit log; see \u201cHow to verify\u201d.</footer>"
        "</body></html>\n"
    )


# -- sections -------------------------------------------------------------------------


def _verification(report: AuditReport) -> str:
    cp = report.checkpoint
    keys = "".join(
        f"<li>key <code>{e(v.name)}</code>, key ID <code>{v.id:08x}</code>, SHA-256 fingerprint "
        f"<code>{e(v.fingerprint)}</code><br>verifier key <code>{e(v.vkey)}</code></li>"
        for v in cp.signers
    )
    facts = [
        ("Log", f"<code>{e(report.origin)}</code>"),
        (
            "Result",
            tag("intact", "good") + f" every entry, the Merkle tree and every stored checkpoint verified "
            f"({report.entries_total} entries)",
        ),
        ("Checkpoint", f"tree size {cp.size}, root hash <code>{e(b64(cp.root))}</code>"),
        ("Signed by", f"<ul>{keys}</ul>"),
        ("Trusted keys", e(report.trust_source)),
        ("Period", e(report.period.label)),
        ("Deadline (SLA)", f"{e(duration(report.sla_seconds * 1000))} from termination to the last account revoked"),
    ]
    if report.sample is not None:
        facts.append(("Sample", f"{len(report.sample)} people chosen by the auditor: " + e(", ".join(report.sample))))
    out = [_facts(facts)]
    if report.unsealed:
        out.append(f'<p class="warn" id="unsealed">{e(unsealed_notice(report))}</p>')
    for title, items in (
        ("Warnings", report.warnings),
        ("Other compliance findings in the log", [f.text for f in report.findings if f.case is None]),
    ):
        if items:
            out.append(f"<h3>{e(title)}</h3><ul>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
    out.append(
        "<details open><summary>The signed checkpoint (keep it: it pins this state of the log)</summary>"
        f"<pre>{e(cp.note)}</pre></details>"
    )
    return "".join(out)


def _summary(report: AuditReport, links: Links) -> str:
    s = report.summary()
    sla = duration(report.sla_seconds * 1000)
    worst = (
        f"{e(duration(s['worst_ms']))} (case <code>{e(s['worst_case'])}</code>, "
        f'<a href="{e(links.person(s["worst_person"]))}">{e(s["worst_person"])}</a>)'
        if s["worst_ms"] is not None
        else "\u2014"
    )
    rows = [
        ("People offboarded (with a case in the period)", str(s["people"])),
        ("Cases", str(s["cases"])),
        ("Complete (every account revoked and read back)", str(s["complete"])),
        ("Accounts revoked, checklist still open", str(s["awaiting_tasks"])),
        ("Incomplete", str(s["incomplete"])),
        ("Still open", str(s["open"])),
        ("Cancelled (undone)", str(s["cancelled"])),
        (f"Median time to revoke (over {s['timed']} fully revoked cases)", e(duration(s["median_ms"]))),
        ("Worst time to revoke", worst),
        (f"Cases over the {sla} deadline", str(len(s["over_deadline"]))),
    ]
    if s["followups"]:
        rows.append(("Follow-up cases (staged steps such as deletion; not timed)", str(s["followups"])))
    table = (
        '<table class="summary"><caption>Summary</caption><tbody>'
        + "".join(f'<tr><th scope="row">{e(k)}</th><td class="num">{v}</td></tr>' for k, v in rows)
        + "</tbody></table>"
    )
    over = [
        [
            f'<a href="{e(links.person(c.person))}">{e(c.person)}</a>',
            f"<code>{e(c.case)}</code>",
            status_tag(c.status),
            when(c.termination_at, c.timezone),
            when(c.deadline, c.timezone),
            e(_ttr(c)),
            e(c.over_reason),
        ]
        for c in s["over_deadline"]
    ]
    return table + _table(
        f"Cases over the {sla} deadline",
        ["Person", "Case", "Status", "Termination", "Deadline", "Time to revoke", "Why"],
        over,
    )


def _case_ref(case: str) -> str:
    """A case id in a narrow cell: its unique tail, the full id on hover (and after it in print)."""
    if len(case) <= 14:
        return f"<code>{e(case)}</code>"
    return f'<abbr title="{e(case)}"><code>\u2026{e(case[-8:])}</code></abbr>'


def _people_rows(report: AuditReport, links: Links) -> str:
    """One row per person in seven columns (fits 1280 px and A4): the time zone is in each local time."""
    rows = []
    for person in report.people:
        c = person.main
        revoked = (
            when(c.last_verified_at, person.timezone) if c.revoked else '<span class="none">not every account</span>'
        )
        rows.append(
            [
                f'<a href="{e(links.person(person.id))}">{e(person.id)}</a>'
                f'<span class="id">{e(person.employee_id or "no employee ID")}</span>',
                when(c.termination_at, person.timezone),
                revoked,
                f'<span class="num">{e(_ttr(c))}</span>',
                when(c.deadline, person.timezone) + f'<span class="local">{deadline_tag(c)}</span>',
                status_tag(c.status),
                " ".join(_case_ref(x.case) for x in person.cases),
            ]
        )
    return _table(
        "One row per person (their main case; details below)",
        ["Person, employee ID", "Termination", "All access removed", "Time to revoke", "Deadline", "Status", "Cases"],
        rows,
        cls="people",
        empty="no cases in this period",
    )


def _observed(value: Any) -> str:
    if value is None:
        return ""
    return e(json.dumps(value, sort_keys=True, ensure_ascii=False)[:300])


def _setup(item: dict[str, Any]) -> str:
    account = (item.get("account") or {}).get("name", "")
    return f"{item.get('system')} {account}: {item.get('detail') or item.get('error')}"


def case_block(case: CaseView, heading: str = "h4", sla_seconds: int | None = None) -> str:
    """A case: its facts, its timeline chart (given the deadline), per-system actions, checklist."""
    zone = case.timezone
    facts = [
        ("Case", f"<code>{e(case.case)}</code>"),
        ("Status", status_tag(case.status) + " " + deadline_tag(case)),
        ("Trigger / policy", f"{e(case.trigger or '?')} / {e(case.policy or '?')}"),
        ("Reason", e(case.reason or "\u2014")),
        ("Termination", when(case.termination_at, zone)),
        ("Deadline", when(case.deadline, zone)),
        (
            "All access removed",
            when(case.last_verified_at, zone) if case.revoked else '<span class="none">not every account</span>',
        ),
        ("Time to revoke", e(_ttr(case))),
        ("Opened / closed", when(case.opened_at, zone) + " / " + when(case.closed_at, zone)),
    ]
    if case.over_reason:
        facts.append(("Over the deadline", e(case.over_reason)))
    if case.legal_hold:
        facts.append(("Legal hold", e(case.legal_hold) + " (no deletion runs while it holds)"))
    if case.recent_setups:
        lines = [_setup(r) for r in case.recent_setups]
        facts.append(("Set up before the end", "<br>".join(e(line) for line in lines)))
    rows = []
    for item in sorted(case.items, key=lambda i: (i.responded_at or "~", i.system)):
        if item.read_back is True:
            read_back = tag("confirmed", "good") + f' <span class="mono">{_observed(item.observed)}</span>'
        elif item.read_back is False:
            read_back = tag("NOT confirmed", "bad") + f" {e(item.detail or '')}"
        else:
            read_back = '<span class="none">\u2014</span>'
        result = tag(item.result or "no result", "good" if item.result == "verified" else "bad")
        if item.error:
            result += f"<br>{e(item.error)}"
        rows.append(
            [
                e(item.system),
                key(item.account_name or item.account_id)
                + (
                    f'<span class="local">{e(item.account_id)}</span>'
                    if item.account_name and item.account_name != item.account_id
                    else ""
                ),
                e(item.kind).replace("_", "_<wbr>"),
                when(item.requested_at, zone),
                when(item.responded_at, zone),
                result,
                read_back,
                f"<code>{e(item.reference)}</code>" if item.reference else '<span class="none">\u2014</span>',
            ]
        )
    out = [
        f'<div class="case"><{heading}>Case <code>{e(case.case)}</code></{heading}>',
        _facts(facts),
        case_timeline(case, sla_seconds) if sla_seconds is not None else "",
        _table(
            f"Per-system timeline, case {case.case}",
            ["System", "Account", "Action", "Requested", "System answered", "Result", "Read-back", "System reference"],
            rows,
            empty="no account actions were planned",
        ),
    ]
    if case.protected:
        out.append(
            _table(
                "Protected accounts left alone",
                ["System", "Account", "Reason"],
                [
                    [
                        e(p.get("system")),
                        e((p.get("account") or {}).get("name") or (p.get("account") or {}).get("id")),
                        e(p.get("reason")),
                    ]
                    for p in case.protected
                ],
            )
        )
    if case.tasks:
        out.append(
            _table(
                f"Checklist, case {case.case}",
                ["Task", "Owner", "Blocking", "Due", "Status", "By", "When", "Note", "Reminders"],
                [
                    [
                        e(t.title or t.id),
                        key(t.owner or "\u2014"),
                        "yes" if t.blocking else "no",
                        when(t.due_at, zone),
                        tag(
                            t.status,
                            "good" if t.status == "done" else ("bad" if t.status == "open" and t.blocking else "warn"),
                        ),
                        key(t.by or "\u2014"),
                        when(t.at, zone),
                        e(t.note or ""),
                        "<br>".join(e(r) for r in t.reminders),
                    ]
                    for t in case.tasks
                ],
            )
        )
    out.append("</div>")
    return "".join(out)


def _person_details(report: AuditReport, links: Links, level: int = 3) -> str:
    out = []
    for n, person in enumerate(report.people):
        out.append(
            f'<section class="person" id="person-{n}" aria-labelledby="person-{n}-h">'
            f'<h{level} id="person-{n}-h">{e(person.id)}</h{level}>'
            f"<p>Employee ID {e(person.employee_id or 'not recorded')}; times in UTC and in {e(person.timezone)}.</p>"
        )
        out.extend(case_block(c, f"h{level + 1}", report.sla_seconds) for c in person.cases)
        out.append("</section>")
    return "".join(out)


def _exceptions(report: AuditReport, links: Links, only: str | None = None) -> str:
    rows = [
        [
            when(x.at),
            f"<code>{e(x.case)}</code>" if x.case else "\u2014",
            f'<a href="{e(links.person(x.person))}">{e(x.person)}</a>'
            if x.person and "," not in x.person
            else e(x.person or "\u2014"),
            e(x.kind),
            e(x.detail),
        ]
        for x in report.exceptions
        if only is None or x.person == only
    ]
    return _table(
        "Incomplete cases and exceptions, with reasons",
        ["When", "Case", "Person", "Kind", "Detail"],
        rows,
        empty="no incomplete cases and no exceptions",
    )


def _reconciliation(rec: Reconciliation | None, links: Links) -> str:
    if rec is None:
        return (
            "<p>No HR source was available for this report. Pass HR\u2019s list of leavers with "
            "<code>--leavers FILE</code> (a CSV with a person or email column and a termination date column), "
            "or configure a people source.</p>"
        )
    out = [
        _facts(
            [
                ("HR source", e(rec.source)),
                ("Leavers in the period", str(len(rec.in_period))),
                ("With a case in the period", str(len(rec.matched))),
                ("With a case only outside the period", str(len(rec.elsewhere))),
                ("With no case at all", tag(str(len(rec.missing)), "bad" if rec.missing else "good")),
            ]
        )
    ]
    out.append(
        _table(
            "Leavers from the HR source with no case",
            ["Person", "Name", "HR termination date", "Where listed"],
            [[e(x.ref), e(x.name or ""), e(x.end or "not given"), e(x.where)] for x in rec.missing],
            empty="every leaver in the period has a case",
        )
    )
    if rec.elsewhere:
        out.append(
            _table(
                "Leavers whose case falls outside the period",
                ["Person", "HR termination date", "Cases (termination day)"],
                [[e(x.ref), e(x.end or "not given"), e(", ".join(cases))] for x, cases in rec.elsewhere],
            )
        )
    if rec.unlisted:
        out.append(
            _table(
                "People with a case in the period whom the HR source does not list",
                ["Person"],
                [[f'<a href="{e(links.person(p))}">{e(p)}</a>'] for p in rec.unlisted],
            )
        )
    return "".join(out)


def _form(report: AuditReport, links: Links) -> str:
    if not links.form:
        return ""
    p = report.period
    csv = f' <a href="{e(links.csv)}">Download these rows as CSV</a>' if links.csv else ""
    return (
        f'<form class="period" method="get" action="{e(links.form)}" aria-label="Choose the period">'
        f'<label>From <input type="date" name="from" value="{e(p.start or "")}" required></label>'
        f'<label>To <input type="date" name="to" value="{e(p.end or "")}" required></label>'
        f'<label>Deadline <input type="text" name="sla" value="{e(sla_text(report.sla_seconds))}" size="6" '
        'pattern="[0-9]+[smhdw]?" title="24h, 4h, 90m, 2d"></label><button type="submit">Show</button></form>'
        f'<p class="noprint">{csv}</p>'
    )


# -- pages ----------------------------------------------------------------------------


def render_report(report: AuditReport, links: Links | None = None) -> str:
    """The whole report; ``links`` None makes the standalone file (anchors only)."""
    if links is None:
        index = {p.id: n for n, p in enumerate(report.people)}
        links = Links(person=lambda pid: f"#person-{index[pid]}" if pid in index else "#people")
    title = f"Termination control evidence, {report.period.label}"
    sections = [
        ("verification", "Verification: the signed log this report is built from", _verification(report)),
        ("summary", "Summary", _summary(report, links)),
        ("charts", "At a glance: time to revoke, per system and over time", overview(report)),
        (
            "people",
            "People and their per-system timelines",
            _people_rows(report, links) + _person_details(report, links),
        ),
        ("exceptions", "Incomplete cases and exceptions", _exceptions(report, links)),
        (
            "owed",
            "Owed work: actions still failing, and for how long",
            owed_section(report.owed, links.person, duration),
        ),
        ("equipment", "Equipment returned, missing and damaged", equipment_section(report, links.person)),
        ("reconciliation", "Reconciliation with HR\u2019s leavers", _reconciliation(report.reconciliation, links)),
        ("how-to-verify", "How to verify this independently", _how_to_verify(report)),
    ]
    nav = "".join(f'<li><a href="#{k}">{e(t)}</a></li>' for k, t, _ in sections)
    body = [
        f'<header><h1>Termination control evidence</h1><p class="lead">{e(report.period.label)}; deadline '
        f"{e(duration(report.sla_seconds * 1000))} from termination; log <code>{e(report.origin)}</code> at checkpoint "
        f"size {report.checkpoint.size}.</p></header>",
        _form(report, links),
        f'<nav aria-label="Contents"><ol>{nav}</ol></nav><main>',
    ]
    for n, (key, heading, content) in enumerate(sections, 1):
        body.append(
            f'<section id="{key}" aria-labelledby="{key}-h"><h2 id="{key}-h">{n}. {e(heading)}</h2>{content}</section>'
        )
    body.append("</main>")
    return _page(title, "".join(body), when(report.generated_at.isoformat()))


def render_person(report: AuditReport, person: PersonView, links: Links) -> str:
    """One person's cases, checklist, exceptions and log entries, with the evidence download."""
    zone = person.timezone
    download = ""
    if links.evidence:
        # no ``download`` attribute: the answer's Content-Disposition makes it a download, and as a plain
        # navigation the request carries whatever header a proxy or browser adds for the token
        download = (
            f'<p><a href="{e(links.evidence(person.id))}">Download the evidence bundle</a> '
            "(a zip with this person\u2019s entries, an inclusion proof for each and the signed checkpoint; "
            "check it with <code>offboard audit verify-evidence</code>).</p>"
        )
    back = f'<p class="noprint"><a href="{e(links.report)}">Back to the report</a></p>' if links.report else ""
    entries = [
        [f'<span class="num">{e(o.get("seq"))}</span>', when(o.get("time"), zone), e(o.get("type")), e(_entry_text(o))]
        for o in person.entries
    ]
    body = [
        f'<header>{back}<h1>{e(person.id)}</h1><p class="lead">Employee ID {e(person.employee_id or "not recorded")}; '
        f"times in UTC and in {e(zone)}. Log <code>{e(report.origin)}</code>, verified at checkpoint size "
        f"{report.checkpoint.size}; deadline {e(duration(report.sla_seconds * 1000))}.</p>{download}</header><main>"
    ]
    if report.unsealed:
        body.append(f'<p class="warn" id="unsealed">{e(unsealed_notice(report))}</p>')
    body.append('<section aria-labelledby="cases-h"><h2 id="cases-h">Cases</h2>')
    body.extend(case_block(c, "h3", report.sla_seconds) for c in person.cases)
    body.append("</section>")
    body.append(
        '<section aria-labelledby="exc-h"><h2 '
        f'id="exc-h">Exceptions</h2>{_exceptions(report, links, person.id)}</section>'
    )
    body.append(
        '<section aria-labelledby="log-h"><h2 id="log-h">Log entries</h2>'
        + _table(f"Every sealed entry about {person.id}", ["Seq", "Time", "Type", "What"], entries)
        + "</section>"
    )
    body.append(
        '<section aria-labelledby="verify-h"><h2 '
        f'id="verify-h">Verification</h2>{_verification(report)}</section></main>'
    )
    return _page(f"Evidence for {person.id}", "".join(body), when(report.generated_at.isoformat()))


def render_error(title: str, message: str) -> str:
    """A plain error page (the message is escaped)."""
    return _page(title, f"<main><h1>{e(title)}</h1><p>{e(message)}</p></main>")
