"""The CLI: exit codes, JSON output, and clear errors for bad input (never a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml


def test_revoke_complete_exits_0_and_status_shows_it(make_company, run):
    company = make_company(systems=2)
    result = run("--config", str(company.config_path), "revoke", "user1@corp.example", "--yes", "--json")
    assert result.exit_code == 0, result.output
    case = json.loads(result.output)
    assert case["status"] == "complete" and len(case["actions"]) == 6
    status = run("--config", str(company.config_path), "status", case["case"], "--json")
    assert status.exit_code == 0
    assert {a["status"] for a in json.loads(status.output)["actions"]} == {"verified"}


def test_revoke_with_a_failing_connector_exits_3(make_company, run):
    company = make_company(systems=2)
    company.write_config(sys1={"lie": True})
    result = run("--config", str(company.config_path), "revoke", "user1@corp.example", "--yes")
    assert result.exit_code == 3, result.output
    assert "incomplete" in result.output
    status = run("--config", str(company.config_path), "status")
    assert "incomplete" in status.output


def test_dry_run_changes_nothing(make_company, run):
    company = make_company(systems=2)
    result = run("--config", str(company.config_path), "revoke", "user1@corp.example", "--dry-run")
    assert result.exit_code == 0
    assert "Dry run" in result.output
    assert company.changes("sys0") == [] and company.changes("sys1") == []


def test_revoke_refuses_without_yes_when_not_interactive(make_company, run):
    company = make_company(systems=1)
    result = run("--config", str(company.config_path), "revoke", "user1@corp.example")
    assert result.exit_code == 2
    assert company.changes("sys0") == []


def test_plan_lists_protected_accounts_without_acting(make_company, run):
    company = make_company(systems=1, admins=("user1",))
    result = run("--config", str(company.config_path), "plan", "user1@corp.example", "--json")
    assert result.exit_code == 0
    plan = json.loads(result.output)
    assert plan["actions"] == [] and plan["protected"][0]["reason"] == "administrator account"


def test_undo(make_company, run):
    company = make_company(systems=1)
    case = json.loads(
        run("--config", str(company.config_path), "revoke", "user1@corp.example", "--yes", "--json").output
    )
    result = run("--config", str(company.config_path), "undo", case["case"], "--yes", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["irreversible"] == ["sys0 user1 revoke_sessions"]
    assert company.state("sys0", "user1")["enabled"] is True


def test_connectors_lists_capabilities(make_company, run):
    company = make_company(systems=1)
    result = run("--config", str(company.config_path), "connectors", "--json")
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["testsys"]["reversible"] == ["disable_account", "remove_memberships"]


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "offboard", *args], capture_output=True, text=True, env=env, timeout=120
    )


def _assert_clear(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ")
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_malformed_policy_names_file_key_and_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nactions: [disable_account, explode_account]\nprotected: {admins: maybe}\n")
    proc = _cli("policies", "validate", str(bad))
    _assert_clear(proc, str(bad), "actions.1", "protected.admins")


def test_policy_that_is_not_yaml(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    _assert_clear(_cli("policies", "validate", str(bad)), str(bad), "not valid YAML at line")


def test_unknown_connector_type(tmp_path, home):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"connectors": {"hr": {"type": "workdayy", "settings": {}}}}))
    proc = _cli("--config", str(config), "--data-dir", str(home), "plan", "a@b.example")
    _assert_clear(proc, "connectors.hr", "unknown connector type 'workdayy'")


def test_unknown_config_key(tmp_path, home):
    config = tmp_path / "c.yaml"
    config.write_text("conectors: {}\n")
    _assert_clear(
        _cli("--config", str(config), "--data-dir", str(home), "status"), str(config), "conectors: unknown key"
    )


def test_unknown_person(make_company, home):
    company = make_company(systems=2)
    proc = _cli("--config", str(company.config_path), "--data-dir", str(home), "revoke", "ghost@corp.example", "--yes")
    _assert_clear(proc, "ghost@corp.example", "sys0")


def test_missing_secret(make_company, home):
    company = make_company(systems=1)
    company.write_config(sys0={"token": "env:OFFBOARD_TEST_NOT_SET"})
    proc = _cli("--config", str(company.config_path), "--data-dir", str(home), "revoke", "user1@corp.example", "--yes")
    _assert_clear(proc, "connectors.sys0.settings.token", "OFFBOARD_TEST_NOT_SET is not set")


def test_inline_secret_is_refused_without_echoing_it(make_company, home):
    company = make_company(systems=1)
    company.write_config(sys0={"token": "hunter2-inline-value"})
    proc = _cli("--config", str(company.config_path), "--data-dir", str(home), "plan", "user1@corp.example")
    _assert_clear(proc, "connectors.sys0.settings.token", "env:NAME or file:")
    assert "hunter2-inline-value" not in proc.stderr + proc.stdout


def test_help_is_fast_to_import():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "offboard", "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 0
    heavy = [
        m
        for m in ("msal", "googleapiclient", "slack_sdk", "ldap3", "sqlalchemy", "fastapi")
        if f" {m}\n" in proc.stderr or f"| {m}\n" in proc.stderr
    ]
    assert heavy == [], f"--help imported {heavy}"
