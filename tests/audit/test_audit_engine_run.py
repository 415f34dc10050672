"""An engine run through the CLI (``offboard demo``) leaves a log that verifies, with verifiable evidence."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from offboard.cli._main import cli


def test_demo_run_verifies_and_exports_evidence(audit_home, audit_kit, tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--people", "6", "--latency", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    keys = tmp_path / "pinned.txt"
    shutil.copy(audit_home / "audit" / "trusted-keys.txt", keys)
    verified = audit_kit.run("verify", "--trusted-keys", str(keys), "--sla", "24h", "--strict")
    assert verified.exit_code == 0, verified.output
    entries = [json.loads(x) for x in (audit_home / "audit" / "entries.jsonl").read_bytes().splitlines()]
    person = next(e["person"]["id"] for e in entries if e["type"] == "case_opened")
    out = tmp_path / "evidence.zip"
    assert audit_kit.run("evidence", person, "--out", str(out)).exit_code == 0
    checked = audit_kit.run("verify-evidence", str(out), "--trusted-keys", str(keys))
    assert checked.exit_code == 0, checked.output
