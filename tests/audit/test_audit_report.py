"""``offboard audit report``: the auditors' HTML and CSV, checked against the log they come from."""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from offboard.audit import AuditLog, read_origin
from offboard.audit._report import Period, ReportError, build_report, duration
from offboard.audit._report_csv import CSV_COLUMNS
from offboard.cli._main import cli
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine

SLA = 24 * 3600


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def report(*args: str):
    return CliRunner().invoke(cli, ["audit", "report", *args], catch_exceptions=False)


def summary_cells(html: str) -> dict[str, str]:
    """The summary table's rows, label -> value, tags stripped."""
    rows = re.findall(r'<tr><th scope="row">(.*?)</th><td class="num">(.*?)</td></tr>', html)
    return {label: re.sub(r"<[^>]+>", "", value) for label, value in rows}


class Text(HTMLParser):
    """The visible text of a page (what a reader sees), without tags, styles or scripts."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def from_log(directory: Path, period: Period, now: datetime) -> dict:
    """The report's headline numbers, computed here straight from entries.jsonl (not through the report code)."""
    entries = [json.loads(line) for line in (directory / "entries.jsonl").read_bytes().splitlines()]
    opened = {e["case"]: e for e in entries if e["type"] == "case_opened"}
    closed: dict[str, dict] = {}
    for entry in entries:
        if entry["type"] == "case_closed":
            closed[entry["case"]] = entry  # the last close counts
    at = {c: datetime.fromisoformat(o["termination_at"].replace("Z", "+00:00")) for c, o in opened.items()}
    chosen = [c for c in opened if period.contains(at[c])]
    status = {c: closed[c]["status"] if c in closed else "open" for c in chosen}
    elapsed = {c: closed[c]["elapsed_ms"] for c in chosen if status[c] == "complete"}
    over = sorted(
        c
        for c in chosen
        if (elapsed.get(c) or 0) > SLA * 1000 or (status[c] != "complete" and at[c] + timedelta(seconds=SLA) < now)
    )
    planned = sum(len(opened[c]["plan"]) for c in chosen)
    return {
        "people": len({opened[c]["person"]["id"] for c in chosen}),
        "cases": len(chosen),
        "complete": sum(s == "complete" for s in status.values()),
        "incomplete": sum(s == "incomplete" for s in status.values()),
        "open": sum(s == "open" for s in status.values()),
        "median": statistics.median(elapsed.values()),
        "worst": max(elapsed.values()),
        "worst_case": max(elapsed, key=elapsed.get),
        "over": over,
        "rows": planned,
        "chosen": set(chosen),
    }


@pytest.fixture
def sandbox_period(make_company, home, audit_kit):
    """Real cases over test systems (two complete, one incomplete), plus a late, an open and an older case."""
    company = make_company(systems=3, people=5)
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        engine.revoke("user0@corp.example")
        engine.revoke("user1@corp.example")
    finally:
        engine.close()
    company.write_config(sys1={"lie": True})  # acknowledges the write, changes nothing: the read-back fails
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        engine.revoke("user2@corp.example")
    finally:
        engine.close()
    directory = home / "audit"
    now = datetime.now(UTC)
    write_case = audit_kit.write_case
    with AuditLog.open(directory, read_origin(directory)) as log:
        write_case(
            log,
            "late@corp.example",
            "case-late",
            ("entra", "github", "slack"),
            termination=iso(now - timedelta(days=3)),
            responded=iso(now - timedelta(days=1, hours=2)),
        )
        write_case(
            log, "stuck@corp.example", "case-open", ("github",), termination=iso(now - timedelta(days=2)), close=False
        )
        write_case(
            log,
            "old@corp.example",
            "case-old",
            termination=iso(now - timedelta(days=60)),
            responded=iso(now - timedelta(days=60) + timedelta(minutes=3)),
        )
        log.checkpoint()
    today = now.date()
    return directory, Period(today - timedelta(days=5), today), now


def test_the_report_of_a_sandbox_period_agrees_with_the_log(sandbox_period, tmp_path):
    directory, period, now = sandbox_period
    out = tmp_path / "report.html"
    result = report("--from", str(period.start), "--to", str(period.end), "--sla", "24h", "--out", str(out))
    assert result.exit_code == 0, result.output
    expected = from_log(directory, period, now)
    assert expected["complete"] == 3 and expected["incomplete"] == 1 and expected["open"] == 1  # the fixture's mix
    assert expected["over"] == ["case-late", "case-open"]
    html = out.read_text()
    cells = summary_cells(html)
    assert cells["People offboarded (with a case in the period)"] == str(expected["people"]) == "5"
    assert cells["Cases"] == str(expected["cases"])
    assert cells["Complete (every account revoked and read back)"] == str(expected["complete"])
    assert cells["Incomplete"] == str(expected["incomplete"])
    assert cells["Still open"] == str(expected["open"])
    assert cells["Cases over the 24 h deadline"] == str(len(expected["over"]))
    # median and worst come from the action entries; the engine's own elapsed_ms agrees to the millisecond
    built = build_report(directory, period=period, sla_seconds=SLA, now=now)
    s = built.summary()
    assert abs(s["median_ms"] - expected["median"]) <= 1 and s["worst_ms"] == expected["worst"]
    assert s["worst_case"] == expected["worst_case"] == "case-late"
    assert duration(s["worst_ms"]) in cells["Worst time to revoke"] and "case-late" in cells["Worst time to revoke"]
    assert sorted(c.case for c in s["over_deadline"]) == expected["over"]
    text = visible(html)
    assert "case-old" not in text and "old@corp.example" not in text  # outside the period
    for person in (
        "user0@corp.example",
        "user1@corp.example",
        "user2@corp.example",
        "late@corp.example",
        "stuck@corp.example",
    ):
        assert person in text
    assert "OVER DEADLINE" in text and "within deadline" in text
    # the incomplete case names the account whose read-back failed, with the reason
    assert re.search(r"incomplete sys1 user2 \w+: unverified", text)
    # the checkpoint it was verified against, with the signing key's fingerprint
    assert f"tree size {built.checkpoint.size}" in text
    assert built.checkpoint.signers[0].fingerprint in text
    assert "offboard audit --log AUDIT_DIR verify --trusted-keys pinned-keys.txt --sla 24h" in text
    assert result.stderr.startswith(
        f"wrote {out}: 5 people, 5 cases (3 complete, 1 incomplete, 1 open), 2 over the 24h deadline"
    )


def test_the_csv_has_the_same_rows(sandbox_period, tmp_path):
    directory, period, now = sandbox_period
    out = tmp_path / "report.csv"
    result = report("--from", str(period.start), "--to", str(period.end), "--format", "csv", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    expected = from_log(directory, period, now)
    assert len(rows) == expected["rows"]
    assert {r["case"] for r in rows} == expected["chosen"]
    late = [r for r in rows if r["case"] == "case-late"]
    assert len(late) == 3 and {r["over_deadline"] for r in late} == {"yes"}
    assert {r["reference"] for r in late} == {"ref-case-late-entra", "ref-case-late-github", "ref-case-late-slack"}
    assert late[0]["time_to_revoke_seconds"] == f"{(72 - 26) * 3600:.3f}"
    lied = [r for r in rows if r["person"] == "user2@corp.example" and r["system"] == "sys1"]
    assert lied and {r["result"] for r in lied} == {"unverified"} and {r["read_back_ok"] for r in lied} == {"no"}
    assert {r["case_status"] for r in rows if r["person"] == "user2@corp.example"} == {"incomplete"}
    opened = [r for r in rows if r["case"] == "case-open"]
    assert (
        opened[0]["case_status"] == "open"
        and opened[0]["time_to_revoke_seconds"] == ""
        and opened[0]["over_deadline"] == "yes"
    )


def test_the_html_is_self_contained_printable_and_escaped(audit_home, audit_kit, tmp_path):
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        log.append(
            "case_opened",
            {
                "case": "c-x",
                "person": {"id": "p-x", "employee_id": "E1", "timezone": "Europe/Berlin"},
                "trigger": "cli",
                "policy": "default",
                "reason": "<script>alert(1)</script>",
                "termination_at": "2026-01-05T12:00:00.000Z",
                "plan": [
                    {
                        "system": "crm",
                        "account": {"id": "a1", "name": '=HYPERLINK("http://evil")'},
                        "kind": "disable_account",
                    }
                ],
                "protected": [
                    {"system": "github", "account": {"id": "9", "name": "ci-bot"}, "reason": "service account"}
                ],
            },
        )
        log.append(
            "action",
            {
                "case": "c-x",
                "person": {"id": "p-x"},
                "system": "crm",
                "account": {"id": "a1", "name": '=HYPERLINK("http://evil")'},
                "kind": "disable_account",
                "requested_at": "2026-01-05T12:00:01.000Z",
                "responded_at": "2026-01-05T12:00:02.000Z",
                "result": "verified",
                "reference": "<b>ref</b>",
                "changed": True,
                "verification": {"ok": True, "observed": {"enabled": False}, "detail": ""},
                "error": None,
                "attempts": 1,
            },
        )
        log.append(
            "case_closed",
            {
                "case": "c-x",
                "person": {"id": "p-x"},
                "status": "complete",
                "counts": {"verified": 1},
                "termination_at": "2026-01-05T12:00:00.000Z",
                "last_verified_at": "2026-01-05T12:00:02.000Z",
                "elapsed_ms": 2000,
            },
        )
        log.checkpoint()
    out = tmp_path / "r.html"
    assert report("--from", "2026-01-01", "--to", "2026-01-31", "--out", str(out)).exit_code == 0
    html = out.read_text()
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>ref</b>" not in html and "&lt;b&gt;ref&lt;/b&gt;" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "no external assets or links"
    assert "<link" not in html and "@import" not in html and "@media print" in html
    assert '<th scope="col">' in html and "<caption>" in html and '<html lang="en">' in html
    text = visible(html)
    # UTC and the person's own zone: 12:00 UTC is 13:00 in Berlin in January
    assert "2026-01-05 12:00:00 UTC" in text and "2026-01-05 13:00:00 CET (Europe/Berlin)" in text
    assert "protected account skipped github ci-bot: service account" in text
    rows = list(csv.reader(io.StringIO(report("--from", "2026-01-01", "--to", "2026-01-31", "--format", "csv").stdout)))
    assert rows[1][CSV_COLUMNS.index("account_name")] == '\'=HYPERLINK("http://evil")'  # never a formula
    assert rows[1][CSV_COLUMNS.index("termination_at_local")] == "2026-01-05 13:00:00+01:00"


def test_a_tampered_log_fails_with_exit_1_and_says_where(sealed_log, tmp_path):
    lines = (sealed_log / "entries.jsonl").read_bytes().splitlines()
    lines[5] = lines[5].replace(b"ref-case-1-entra", b"ref-case-1-entrb")
    (sealed_log / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    out = tmp_path / "r.html"
    result = report("--from", "2026-01-01", "--to", "2026-01-31", "--out", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: the audit log does not verify: ")
    # the checkpoint that no longer matches, and the first changed entry (from the leaf-hash cache)
    assert "checkpoints/00000000000000000008.note: root hash does not match the first 8 entries" in result.stderr
    assert "leafhashes.bin: does not match entries.jsonl (first difference at leaf 5" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not out.exists()


def test_a_rewritten_checkpoint_is_named(sealed_log, tmp_path):
    lines = (sealed_log / "entries.jsonl").read_bytes().splitlines()
    (sealed_log / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines[:-2]))
    result = report("--from", "2026-01-01", "--to", "2026-01-31")
    assert result.exit_code == 1
    assert "checkpoints/" in result.stderr and "covers 12 entries but the log has only 10" in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (("--from", "2026-13-01", "--to", "2026-01-31"), "--from '2026-13-01' is not a date (YYYY-MM-DD)"),
        (("--from", "2026-02-01", "--to", "2026-01-31"), "--from 2026-02-01 is after --to 2026-01-31"),
        (("--from", "2026-01-01", "--to", "2026-01-31", "--sla", "soon"), "--sla: 'soon' is not a duration"),
        (
            ("--from", "2026-01-01", "--to", "2026-01-31", "--person", "p-nobody"),
            "no case in the audit log for person 'p-nobody'",
        ),
    ],
)
def test_bad_input_is_one_clear_line(sealed_log, args, words):
    result = report(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {result.stderr[7:]}" and words in result.stderr and result.stderr.count("\n") == 1


def test_a_missing_log_or_one_without_a_checkpoint(audit_home, audit_kit):
    result = report("--from", "2026-01-01", "--to", "2026-01-31")
    assert result.exit_code == 2 and result.stderr == f"error: no audit log at {audit_home / 'audit'}\n"
    with audit_kit.open_log(audit_home / "audit"):
        pass  # an empty log: nothing sealed
    (audit_home / "audit" / "checkpoints" / "latest.note").unlink(missing_ok=True)
    for note in (audit_home / "audit" / "checkpoints").glob("*.note"):
        note.unlink()
    result = report("--from", "2026-01-01", "--to", "2026-01-31", "--no-seal")
    assert result.exit_code == 2 and "no signed checkpoint yet" in result.stderr
    result = report("--from", "2026-01-01", "--to", "2026-01-31")  # the default seals the empty log first
    assert result.exit_code == 0 and "0 people, 0 cases" in result.stderr and "checkpoint size 0" in result.stderr


def test_only_sealed_entries_are_reported(audit_home, audit_kit):
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        audit_kit.write_case(log, "p-sealed", "c-1")
        log.checkpoint()
        audit_kit.write_case(log, "p-unsealed", "c-2")
    # opening the log seals it, so reopen is avoided: the report reads the directory as it is
    built = build_report(directory, period=Period(date(2026, 1, 1), date(2026, 1, 31)))
    assert [p.id for p in built.people] == ["p-sealed"] and built.unsealed == 4
    assert any("not sealed yet" in w for w in built.warnings)


def test_the_command_seals_first_unless_told_not_to(audit_home, audit_kit, tmp_path):
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        audit_kit.write_case(log, "p-sealed", "c-1")
        log.checkpoint()
        audit_kit.write_case(log, "p-unsealed", "c-2")
    out = tmp_path / "r.html"
    result = report("--from", "2026-01-01", "--to", "2026-01-31", "--no-seal", "--out", str(out))
    assert result.exit_code == 0, result.output
    notice = "4 entries after checkpoint size 4 are not yet sealed; they appear once sealed."
    assert notice in result.stderr and notice in visible(out.read_text())
    assert "p-unsealed" not in out.read_text() and "1 people" in result.stderr
    result = report("--from", "2026-01-01", "--to", "2026-01-31", "--out", str(out))  # the default seals
    assert result.exit_code == 0, result.output
    assert "not yet sealed" not in result.stderr + out.read_text() and "p-unsealed" in out.read_text()
    assert "2 people" in result.stderr and "verified at checkpoint size 8" in result.stderr


def test_an_auditor_sample_and_the_period_edges(sealed_log):
    built = build_report(sealed_log, period=Period(date(2026, 1, 1), date(2026, 1, 1)), people=["E-p-bob", "P-ALICE"])
    assert [p.id for p in built.people] == ["p-alice", "p-bob"] and built.sample == ["p-alice", "p-bob"]
    assert build_report(sealed_log, period=Period(date(2025, 12, 1), date(2025, 12, 31))).people == []
    assert len(build_report(sealed_log, period=Period(date(2026, 1, 1), None)).people) == 3
    with pytest.raises(ReportError) as info:
        build_report(sealed_log, people=["nobody"])
    assert info.value.code == 2


def test_reconciliation_with_hr_leavers_file(sealed_log, tmp_path):
    leavers = tmp_path / "leavers.csv"
    leavers.write_text(
        "Employee Name;Work Email;Termination Date\nAlice;P-ALICE;2026-01-01\nZed;zed@corp.example;2026-01-20\n"
        "Old;old@corp.example;2025-06-30\nNo date;nodate@corp.example;\n"
    )
    out = tmp_path / "r.html"
    result = report("--from", "2026-01-01", "--to", "2026-01-31", "--leavers", str(leavers), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (
        "2 leaver(s) from HR leavers file leavers.csv (4 rows) have no case: zed@corp.example, nodate@corp.example"
        in result.stderr
    )
    text = visible(out.read_text())
    assert "Leavers from the HR source with no case" in text
    assert "zed@corp.example Zed 2026-01-20 leavers.csv row 3" in text and "old@corp.example" not in text
    # p-bob and p-carol have cases but HR's list does not name them
    assert "People with a case in the period whom the HR source does not list Person p-bob p-carol" in text
    assert "Leavers in the period 3 With a case in the period 1" in text


@pytest.mark.parametrize(
    "content, words",
    [
        ("name,department\nA,Sales\n", "no person column"),
        ("email,department\na@corp.example,Sales\n", "no termination date column"),
        ("email,last_day\na@corp.example,31/01/2026\n", "row 2: termination date '31/01/2026' is not a date"),
        ("", "is empty"),
    ],
)
def test_a_bad_leavers_file_is_one_clear_line(sealed_log, tmp_path, content, words):
    path = tmp_path / "leavers.csv"
    path.write_text(content)
    result = report("--from", "2026-01-01", "--to", "2026-01-31", "--leavers", str(path))
    assert result.exit_code == 2 and result.stderr.startswith("error: --leavers: ") and words in result.stderr
    assert result.stderr.count("\n") == 1


def test_reconciliation_with_the_configured_people_source(sealed_log, tmp_path):
    export = tmp_path / "hr.csv"
    export.write_text(
        "id,email,employee_id,end_date,timezone\np-alice,alice@corp.example,E-p-alice,2026-01-01,UTC\n"
        "p-dave,dave@corp.example,E9,2026-01-15,Europe/Paris\np-erin,erin@corp.example,E10,,UTC\n"
    )
    config = tmp_path / "offboard.yaml"
    config.write_text(yaml.safe_dump({"people": [{"type": "hr_export", "settings": {"path": str(export)}}]}))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "audit", "report", "--from", "2026-01-01", "--to", "2026-01-31", "--out", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert (
        "1 leaver(s) from people source hr_export (the configured people sources) have no case: p-dave" in result.stderr
    )
    text = visible(out.read_text())
    assert "Leavers in the period 2" in text and "With no case at all 1" in text


def test_checklists_followups_and_cancelled_cases(audit_home, audit_kit):
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        audit_kit.write_case(log, "p-tasks", "c-1", status="awaiting_tasks")
        log.append(
            "task",
            {
                "case": "c-1",
                "person": {"id": "p-tasks"},
                "task": "laptop",
                "title": "Return the laptop",
                "owner": "it@corp.example",
                "blocking": True,
                "due_at": "2026-01-02T17:00:00.000Z",
                "status": "done",
                "by": "Ivy",
                "note": "received at the front desk",
                "at": "2026-01-02T09:00:00.000Z",
            },
        )
        audit_kit.write_case(
            log, "p-tasks", "c-2", termination="2026-01-20T00:00:00.000Z", responded="2026-01-20T00:00:05.000Z"
        )
        log.append(
            "case_opened",
            {
                "case": "c-3",
                "person": {"id": "p-tasks"},
                "trigger": "followup",
                "policy": "default",
                "reason": "follow-up of c-1",
                "termination_at": "2026-01-25T00:00:00.000Z",
                "plan": [],
            },
        )
        log.append(
            "case_closed",
            {
                "case": "c-3",
                "person": {"id": "p-tasks"},
                "status": "complete",
                "counts": {},
                "termination_at": "2026-01-25T00:00:00.000Z",
                "last_verified_at": None,
                "elapsed_ms": None,
            },
        )
        audit_kit.write_case(log, "p-undone", "c-4")
        log.append(
            "case_undone",
            {
                "case": "c-4",
                "person": {"id": "p-undone"},
                "actor": "Hank",
                "restored": ["entra x"],
                "irreversible": [],
                "failed": [],
            },
        )
        log.append(
            "case_closed",
            {
                "case": "c-4",
                "person": {"id": "p-undone"},
                "status": "cancelled",
                "counts": {"verified": 2},
                "termination_at": "2026-01-01T00:00:00.000Z",
                "last_verified_at": "2026-01-01T00:05:00.000Z",
                "elapsed_ms": 300000,
            },
        )
        log.checkpoint()
    built = build_report(
        directory, period=Period(date(2026, 1, 1), date(2026, 1, 31)), now=datetime(2026, 2, 1, tzinfo=UTC)
    )
    s = built.summary()
    assert (s["people"], s["cases"], s["awaiting_tasks"], s["complete"], s["cancelled"], s["followups"]) == (
        2,
        3,
        1,
        1,
        1,
        1,
    )
    assert s["timed"] == 2 and s["over_deadline"] == []  # the follow-up and the cancelled case are not timed
    (task,) = next(c for c in built.cases if c.case == "c-1").tasks
    assert (task.status, task.by, task.at, task.note) == (
        "done",
        "Ivy",
        "2026-01-02T09:00:00.000Z",
        "received at the front desk",
    )
    kinds = {(x.case, x.kind) for x in built.exceptions}
    assert ("c-1", "checklist open") in kinds and ("c-4", "cancelled") in kinds
    from offboard.audit._report_html import render_report

    text = visible(render_report(built))
    assert "Return the laptop it@corp.example yes" in text and "Ivy" in text
    assert "undone by Hank; restored: entra x" in text


def test_sweep_approvals_and_a_sample_outside_the_period(audit_home, audit_kit):
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        log.append(
            "approval",
            {
                "scope": "sweep",
                "approver": "Dana (CISO)",
                "people": ["p-swept", "p-other"],
                "reasons": ["2 cases is more than limits.max_cases (1)"],
                "leavers": 2,
                "cases": 2,
            },
        )
        audit_kit.write_case(
            log, "p-swept", "c-1", termination="2026-01-10T00:00:00.000Z", responded="2026-01-10T00:01:00.000Z"
        )
        log.append("sweep", {"opened": ["c-1"], "approved_by": "Dana (CISO)", "incomplete": [], "people": ["p-swept"]})
        audit_kit.write_case(
            log, "p-later", "c-2", termination="2026-03-01T00:00:00.000Z", responded="2026-03-01T00:01:00.000Z"
        )
        log.checkpoint()
    built = build_report(directory, period=Period(date(2026, 1, 1), date(2026, 1, 31)), people=["p-swept", "p-later"])
    found = {(x.kind, x.case, x.person): x.detail for x in built.exceptions}
    assert found[("approval", "c-1", "p-swept")].startswith("opened by a sweep approved by Dana (CISO)")
    assert (
        found[("approval", None, "p-swept")]
        == "sweep for 2 people approved by Dana (CISO): 2 cases is more than limits.max_cases (1)"
    )
    assert found[("sampled, no case in the period", None, "p-later")] == "cases at other times: c-2 (2026-03-01)"


def test_a_demo_run_reports_its_case(audit_home, tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--people", "6", "--latency", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    entries = [json.loads(x) for x in (audit_home / "audit" / "entries.jsonl").read_bytes().splitlines()]
    (opened,) = [e for e in entries if e["type"] == "case_opened"]
    day = opened["termination_at"][:10]
    out = tmp_path / "demo.csv"
    assert report("--from", day, "--to", day, "--format", "csv", "--out", str(out)).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(opened["plan"]) and {r["person"] for r in rows} == {opened["person"]["id"]}
    assert {r["result"] for r in rows} == {"verified"} and {r["case_status"] for r in rows} == {"complete"}
    assert {r["time_zone"] for r in rows} == {opened["person"].get("timezone") or "UTC"}
    refs = {e["reference"] for e in entries if e["type"] == "action"}
    assert {r["reference"] for r in rows} == refs - {None} | ({""} if None in refs else set())


def test_findings_and_skipped_accounts_in_the_exceptions(audit_home, audit_kit):
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        audit_kit.write_case(log, "p-skip", "c-skip", results={"github": "skipped"})
        audit_kit.write_case(log, "p-bad", "c-bad", results={"github": "failed"}, status="incomplete")
        for person, case, termination in (
            ("p-counts", "c-counts", "2026-01-01T00:00:00.000Z"),
            ("p-out", "c-out", "2026-03-01T00:00:00.000Z"),
        ):
            audit_kit.write_case(log, person, case, termination=termination, close=False)
            log.append(
                "case_closed",
                {
                    "case": case,
                    "person": {"id": person},
                    "status": "complete",
                    "counts": {"verified": 5},
                    "termination_at": termination,
                    "last_verified_at": "2026-01-01T00:05:00.000Z",
                    "elapsed_ms": 300000,
                },
            )
        log.checkpoint()
    built = build_report(directory, period=Period(date(2026, 1, 1), date(2026, 1, 31)))
    found = {(x.kind, x.case, x.person): x.detail for x in built.exceptions}
    assert found[("skipped", "c-skip", "p-skip")] == "github p-skip@github.example disable_account skipped: boom"
    assert (
        found[("finding", "c-counts", "p-counts")]
        == "case_closed counts {'verified': 5} disagree with the action entries {'verified': 2}"
    )
    assert ("finding", "c-bad", "p-bad") not in found  # 'closed incomplete' is shown as the incomplete case itself
    assert found[("incomplete", "c-bad", "p-bad")] == "github p-bad@github.example disable_account: failed (boom)"
    assert not any(x.case == "c-out" or x.person == "p-out" for x in built.exceptions)  # outside the period
    findings = [str(f) for f in built.findings]
    assert [f.split(":")[0] for f in findings] == ["case c-bad (person p-bad)", "case c-counts (person p-counts)"]
