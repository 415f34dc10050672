"""Reversible or destructive: a sweep whose plans hold a step offboard cannot undo halts before any action
unless run with --allow-destructive or approved; plan marks such steps and undo names them.

The accounts live in the sandbox's SCIM application (scim2-server behind the simulator), configured with
an application profile: Atlassian's DELETE cannot be undone, Slack's DELETE only deactivates.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from offboard.sandbox import Sandbox

from ._support import cases, events

POLICY = {
    "name": "leaver-delete",
    "description": "Contractors' accounts are disabled and deleted at once.",
    "person_types": ["contractor"],
    "actions": ["revoke_sessions", "disable_account", "delete_account"],
}


@pytest.fixture(scope="module")
def sandbox():
    sb = Sandbox(people=40, seed=5, systems=("scim",)).start()
    try:
        yield sb
    finally:
        sb.stop()


def _setup(sandbox: Sandbox, tmp_path: Path, profile: str, leavers: int = 2) -> tuple[Path, list[str]]:
    pool = [
        i
        for i in sandbox.company.in_system("scim")
        if i.kind == "person" and i.person is not None and not i.protected and not i.admin
    ]
    people = [i.person for i in pool if (sandbox.account("scim", i.email) or {}).get("active")]
    gone = people[:leavers]
    past = (date.today() - timedelta(days=2)).isoformat()
    hr = [
        {
            "id": p.email,
            "email": p.email,
            "employee_id": p.employee_id,
            "name": p.name,
            "type": "contractor" if p in gone else "employee",
            "timezone": "UTC",
            **({"end_date": past} if p in gone else {}),
        }
        for p in people
    ]
    (tmp_path / "hr.json").write_text(json.dumps(hr))
    (tmp_path / "leaver-delete.yaml").write_text(yaml.safe_dump(POLICY))
    settings = dict(sandbox.config()["connectors"]["scim"]["settings"], profile=profile)
    config = {
        "connectors": {"app": {"type": "scim", "settings": settings}},
        "people": [{"type": "hr_export", "settings": {"path": str(tmp_path / "hr.json")}}],
        "policies": [str(tmp_path / "leaver-delete.yaml")],
        "policy_by_type": {"contractor": "leaver-delete"},
        "limits": {"max_cases": 50, "max_percent": 100},
    }
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, [p.email for p in gone]


def test_a_sweep_with_a_destructive_step_halts_without_allow_destructive(sandbox, tmp_path, run, home):
    config, gone = _setup(sandbox, tmp_path, "atlassian")
    halted = run("--config", str(config), "sweep", "--json")
    assert halted.exit_code == 3, halted.output
    body = json.loads(halted.stdout)
    assert body["halted"] and body["cases"] == []
    assert body["destructive"] == ["it would delete_account on 2 account(s) in app, which offboard cannot undo"]
    assert "--allow-destructive" in body["message"]
    for email in gone:  # nothing was touched
        assert sandbox.account("scim", email)["active"] is True
    assert events(home, "sweep_halted")[0]["payload"]["reasons"] == body["destructive"]

    dry = json.loads(run("--config", str(config), "sweep", "--dry-run", "--json").output)
    steps = {(a["kind"], a["destructive"]) for plan in dry["plans"] for a in plan["actions"]}
    assert steps == {("disable_account", False), ("delete_account", True)}

    allowed = run("--config", str(config), "sweep", "--allow-destructive", "--json")
    assert allowed.exit_code == 0, allowed.output
    assert sorted(c["person"] for c in json.loads(allowed.output)["cases"]) == sorted(gone)
    for email in gone:
        assert sandbox.account("scim", email) is None
    assert events(home, "sweep")[-1]["payload"]["allowed_destructive"] == body["destructive"]

    undo = run("--config", str(config), "undo", cases(home)[0]["id"], "--yes", "--json")
    report = json.loads(undo.output)
    assert [label.split()[-1] for label in report["destructive"]] == ["delete_account"]
    assert set(report["destructive"]) <= set(report["irreversible"])


def test_an_approval_lets_a_destructive_sweep_proceed_and_is_recorded(sandbox, tmp_path, run, home):
    config, gone = _setup(sandbox, tmp_path, "atlassian", leavers=1)
    result = run("--config", str(config), "sweep", "--approve", "--approver", "dana", "--json")
    assert result.exit_code == 0, result.output
    approval = events(home, "approval")[0]["payload"]
    assert approval["approver"] == "dana" and any("delete_account" in r for r in approval["reasons"])
    assert sandbox.account("scim", gone[0]) is None


def test_where_delete_only_deactivates_the_sweep_needs_no_flag(sandbox, tmp_path, run):
    """Slack's SCIM DELETE deactivates the user; the profile says so, the step can be undone, nothing halts."""
    sim = sandbox.sim("scim")
    sim.use_profile("slack")
    sim.knobs.rate_limits = False
    try:
        config, gone = _setup(sandbox, tmp_path, "slack", leavers=1)
        result = run("--config", str(config), "sweep", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["destructive"] == []
        assert sandbox.account("scim", gone[0])["active"] is False
    finally:
        sim.use_profile("generic")
        sim.knobs.rate_limits = True


def test_plan_marks_the_destructive_step(sandbox, tmp_path, run):
    config, gone = _setup(sandbox, tmp_path, "atlassian", leavers=1)
    result = run("--config", str(config), "plan", gone[0], "--policy", "leaver-delete", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "delete_account (destructive: cannot be undone)" in result.output
    assert "disable_account (destructive" not in result.output
    as_json = json.loads(run("--config", str(config), "plan", gone[0], "--policy", "leaver-delete", "--json").output)
    assert {a["kind"]: a["destructive"] for a in as_json["actions"]}["delete_account"] is True


def test_allow_destructive_in_the_config_must_be_a_boolean(sandbox, tmp_path, run):
    config, _ = _setup(sandbox, tmp_path, "atlassian", leavers=1)
    data = yaml.safe_load(config.read_text())
    data["sweep"] = {"allow_destructive": "yes please"}
    config.write_text(yaml.safe_dump(data))
    result = run("--config", str(config), "sweep", "--dry-run")
    assert result.exit_code == 2
    assert "allow_destructive must be true or false" in result.output


def test_a_later_destructive_step_is_marked_in_the_plan_and_does_not_halt_the_run(sandbox, tmp_path, run):
    """The halt counts the steps the run applies; a scheduled deletion is shown as destructive when the case opens."""
    config, gone = _setup(sandbox, tmp_path, "atlassian", leavers=1)
    policy = {**POLICY, "actions": ["disable_account"], "later": [{"action": "delete_account", "after": "30d"}]}
    (tmp_path / "leaver-delete.yaml").write_text(yaml.safe_dump(policy))
    plan = json.loads(run("--config", str(config), "plan", gone[0], "--policy", "leaver-delete", "--json").output)
    assert [(s["kind"], s["destructive"]) for s in plan["later"]] == [("delete_account", True)]
    result = run("--config", str(config), "sweep", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["destructive"] == []
