"""The auditors' report lists owed work: each action still failing, since when, retried and escalated how often,
and each one given up on, with who and why (``_report_owed``), in the HTML and in the CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import datetime, timedelta
from html import unescape

from offboard import CaseStatus
from offboard.audit import AuditLog, read_origin
from offboard.audit._report import build_report
from offboard.audit._report_csv import CSV_COLUMNS, report_csv
from offboard.audit._report_html import render_report
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine
from offboard.engine._owed import abandon


def visible(html: str) -> str:
    """The page's text without tags and styles, whitespace folded (as a reader sees it)."""
    body = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split())


def entries(directory):
    return [json.loads(line) for line in (directory / "entries.jsonl").read_bytes().splitlines()]


def test_owed_work_appears_with_its_age_retries_escalation_and_abandonment(make_company, home):
    company = make_company(systems=2, people=4)
    company.extra = {"cases": {"escalate_after": "1s"}}
    company.write_config(sys1={"lie": True})  # acknowledges every write, changes nothing: nothing verifies there
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        owed = engine.revoke("user1@corp.example")
        given_up = engine.revoke("user2@corp.example")
        assert owed.status == given_up.status == CaseStatus.INCOMPLETE
        stuck = [r for r in engine.store.actions(given_up.case_id) if r["status"] in ("failed", "unverified")]
        abandon(engine, given_up.case_id, stuck[0]["id"], "system retired next week", "Dana Auditor")
        time.sleep(1.1)  # owed longer than cases.escalate_after
        engine.retry_owed(force=True)  # escalates both cases, retries the owed work; sys1 still lies
        engine.retry_owed(force=True)
    finally:
        engine.close()
    directory = home / "audit"
    with AuditLog.open(directory, read_origin(directory)) as log:
        log.checkpoint()
    log_entries = entries(directory)
    first = next(
        e for e in log_entries if e["type"] == "action" and e["case"] == owed.case_id and e["result"] != "verified"
    )
    failed_at = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    now = failed_at + timedelta(days=3, hours=4)
    report = build_report(directory, now=now)
    mine = [r for r in report.owed if r.case == owed.case_id]
    assert mine and {(r.system, r.state) for r in mine} == {("sys1", "owed")}
    row = next(r for r in mine if r.kind == first["kind"])
    assert row.first_failed_at == first["time"]  # the first failure, not the retries' later ones
    assert row.age_ms == int((now - failed_at).total_seconds() * 1000)
    assert row.retries == 2 and row.escalated_at is not None and row.attempts and row.abandoned_by is None
    abandoned = [r for r in report.owed if r.case == given_up.case_id and r.state == "abandoned"]
    assert [(r.abandoned_by, r.why, r.result) for r in abandoned] == [
        ("Dana Auditor", "system retired next week", "skipped")
    ]
    assert all(r.state == "owed" for r in report.owed if r.case == given_up.case_id and r not in abandoned)
    assert not [r for r in report.owed if r.system == "sys0"]  # verified there: nothing owed

    text = visible(render_report(report))
    assert "Owed work: actions still failing, and for how long" in text
    assert f"{len([r for r in report.owed if r.state == 'owed'])} action(s) still owed (" in text
    assert "the oldest for 3 d 4 h" in text and "Dana Auditor at" in text and "system retired next week" in text

    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    owed_row = next(
        r for r in rows if r["case"] == owed.case_id and r["system"] == "sys1" and r["action"] == first["kind"]
    )
    assert owed_row["owed"] == "owed" and owed_row["owed_since_utc"] == first["time"]
    assert owed_row["owed_age_seconds"] == f"{(now - failed_at).total_seconds():.3f}"
    assert owed_row["owed_retries"] == "2" and owed_row["owed_escalated_at_utc"]
    gone = next(r for r in rows if r["case"] == given_up.case_id and r["owed"] == "abandoned")
    assert gone["abandoned_by"] == "Dana Auditor" and gone["abandoned_at_utc"]
    assert {r["owed"] for r in rows if r["system"] == "sys0"} == {""}


def test_a_period_with_no_owed_work_says_so(sealed_log):
    report = build_report(sealed_log)
    assert report.owed == []
    assert "No work owed" in visible(render_report(report))
