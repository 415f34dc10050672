"""``offboard config show`` / ``config check``, and output that survives a closed pipe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from offboard.cli._main import cli

from .. import _fakes

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_show_gives_references_and_where_each_value_came_from(make_company, monkeypatch):
    company = make_company(systems=1, people=1)
    assert company.config_path is not None
    data = yaml.safe_load(company.config_path.read_text())
    data["connectors"]["sys0"]["settings"]["token"] = "env:FH_TOKEN"
    data["limits"] = {"max_cases": 3}
    company.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("FH_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("OFFBOARD_CONFIG", str(company.config_path))
    result = run("config", "show", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["file"] == str(company.config_path) and report["found_by"] == "OFFBOARD_CONFIG"
    values = {r["key"]: r for r in report["values"]}
    lines = company.config_path.read_text().splitlines()
    token = values["connectors.sys0.settings.token"]
    assert token["value"] == "env:FH_TOKEN"
    assert lines[int(token["from"].rsplit(":", 1)[1]) - 1].strip() == "token: env:FH_TOKEN"
    assert values["limits.max_cases"]["value"] == 3 and values["limits.max_cases"]["from"].startswith(
        str(company.config_path)
    )
    assert values["limits.max_percent"] == {"key": "limits.max_percent", "value": 10.0, "from": "default"}
    human = run("config", "show")
    assert "s3cr3t-value" not in human.output + result.output
    assert "connectors.sys0.settings.token" in human.stdout and "env:FH_TOKEN" in human.stdout


def test_check_runs_every_connector_check(make_company):
    company = make_company(systems=2, people=1)
    result = run("--config", str(company.config_path), "config", "check")
    assert result.exit_code == 0, result.output
    assert "ok      sys0 (testsys) as tester" in result.stdout and result.stdout.endswith("2 of 2 connector(s) ok\n")
    _fakes.add_faults(company.systems["sys1"], (401, None))
    result = run("--config", str(company.config_path), "config", "check", "--json")
    assert result.exit_code == 3
    checks = {c["connector"]: c for c in json.loads(result.stdout)["connectors"]}
    assert checks["sys0"]["ok"] and not checks["sys1"]["ok"]
    assert "credentials rejected" in checks["sys1"]["detail"]


def test_check_on_a_wrong_config_exits_2_naming_the_key(make_company):
    company = make_company(systems=1, people=1)
    assert company.config_path is not None
    company.config_path.write_text(company.config_path.read_text() + "protectd: [x]\n")
    result = run("--config", str(company.config_path), "config", "check")
    assert result.exit_code == 2
    assert f"{company.config_path}: protectd: unknown key. Did you mean 'protected'?" in result.stderr


def test_output_to_a_closed_pipe_exits_quietly(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump({"protected": [f"svc-{i:06d}@corp.example" for i in range(40000)]}))
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'connectors'}"}
    for args in (["config", "show"], ["config", "show", "--json"]):
        cmd = f'"{sys.executable}" -m offboard --config "{big}" {" ".join(args)} | head -c 10'
        proc = subprocess.run(
            ["bash", "-c", cmd + "; echo ${PIPESTATUS[0]} >&2"], capture_output=True, text=True, env=env
        )
        assert proc.stderr.strip() in ("0", "141"), proc.stderr
        assert len(proc.stdout) == 10


def test_a_misspelled_policy_key_gets_a_suggestion(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "name: p\nactions: [disable_account]\nequipment: {kinds: [laptop], owner: it, du: 1d}\nlatr: []\n"
    )
    result = run("policies", "validate", str(policy))
    assert result.exit_code == 2
    assert f"{policy}: latr: unknown key. Did you mean 'later'?" in result.stderr
    assert "equipment.du: unknown key. Did you mean 'due'?" in result.stderr
