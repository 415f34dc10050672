"""Undo and the audit log agree: an undone case is a consistent, final state (cancelled, undone)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import UTC, datetime

from offboard.audit._report_csv import CSV_COLUMNS


def _revoke_then_undo(company, run) -> tuple[str, dict]:
    config = str(company.config_path)
    revoked = run("--config", config, "revoke", "user1@corp.example", "--yes", "--json")
    assert revoked.exit_code == 0, revoked.output
    case_id = json.loads(revoked.stdout)["case"]
    undone = run("--config", config, "undo", case_id, "--yes", "--json")
    assert undone.exit_code == 0, undone.output
    report = json.loads(undone.stdout)
    assert report["restored"] and not report["failed"]
    return case_id, report


def test_after_undo_the_log_verifies_the_evidence_verifies_and_the_report_says_cancelled(
    make_company, home, run, tmp_path
):
    company = make_company(systems=2, people=3)
    case_id, undo = _revoke_then_undo(company, run)
    config = str(company.config_path)
    status = run("--config", config, "status", case_id, "--json")
    assert json.loads(status.stdout)["status"] == "cancelled"

    keys = tmp_path / "pinned.txt"
    shutil.copy(home / "audit" / "trusted-keys.txt", keys)
    verified = run("--config", config, "audit", "verify", "--trusted-keys", str(keys), "--sla", "24h", "--strict")
    assert verified.exit_code == 0, verified.output  # was 2: "case_closed counts ... disagree ... {'undone': n}"

    bundle = tmp_path / "evidence.zip"
    exported = run("--config", config, "audit", "evidence", "user1@corp.example", "--out", str(bundle))
    assert exported.exit_code == 0, exported.output
    checked = run("--config", config, "audit", "verify-evidence", str(bundle), "--trusted-keys", str(keys))
    assert checked.exit_code == 0, checked.output

    out = tmp_path / "report.csv"
    day = datetime.now(UTC).date().isoformat()
    made = run("--config", config, "audit", "report", "--from", day, "--to", day, "--format", "csv", "--out", str(out))
    assert made.exit_code == 0, made.output
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    mine = [dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:] if r[CSV_COLUMNS.index("case")] == case_id]
    assert mine and all(r["case_status"] == "cancelled" for r in mine)
    undone = sorted(f"{r['system']} {r['account_name']} {r['action']}" for r in mine if r["result"] == "undone")
    assert undone == sorted(undo["restored"])  # the rest (e.g. revoked sessions) stay as done: irreversible
    assert {r["result"] for r in mine} <= {"undone", "verified"}
    assert all(r["undone_by"] and r["undone_at_utc"].startswith(day) for r in mine)

    html = tmp_path / "report.html"
    made = run("--config", config, "audit", "report", "--from", day, "--to", day, "--out", str(html))
    assert made.exit_code == 0, made.output
    text = html.read_text()
    assert "Cancelled (undone)" in text and f"undone by {mine[0]['undone_by']}" in text
