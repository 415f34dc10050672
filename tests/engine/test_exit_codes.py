"""Exit codes that tell the truth: plan with an unsearchable system, revoke with nothing to do, all protected, again."""

from __future__ import annotations

import copy
import json
import sqlite3

import pytest
import yaml

from offboard.sandbox import Sandbox

from ..inventory._support import cases, write_hr


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(people=12, seed=7) as sb:
        yield sb


def _write(tmp_path, config) -> str:
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _person(sb: Sandbox):
    return next(i for i in sb.company.identities if i.kind == "person" and "slack" in i.systems and not i.admin)


def test_plan_exits_3_when_a_system_cannot_be_searched(sandbox, tmp_path, run):
    config = copy.deepcopy(sandbox.config())  # the sandbox hands out its own dict
    wrong = tmp_path / "wrong-token"
    wrong.write_text("xoxb-not-the-token")
    config["connectors"]["slack"]["settings"]["token"] = f"file:{wrong}"
    person = _person(sandbox).email
    result = run("--config", _write(tmp_path, config), "plan", person)
    assert result.exit_code == 3, result.output
    assert "slack" in result.output and "could not be searched" in result.output
    as_json = run("--config", _write(tmp_path, config), "plan", person, "--json")
    assert as_json.exit_code == 3
    assert "slack" in json.loads(as_json.stdout)["errors"]


def test_plan_exits_0_when_every_system_answers(sandbox, tmp_path, run):
    result = run("--config", _write(tmp_path, sandbox.config()), "plan", _person(sandbox).email)
    assert result.exit_code == 0, result.output


def test_revoke_with_nothing_to_do_exits_0_and_opens_no_case(make_company, run, home, tmp_path):
    company = make_company(systems=2)
    hr = write_hr(tmp_path / "hr.json", company.people)
    company.extra["people"] = [{"type": "hr_export", "settings": {"path": str(hr)}}]
    config = str(company.write_config())
    for path in company.systems.values():  # user2 is in HR but holds no account anywhere
        db = sqlite3.connect(path)
        db.execute("delete from accounts where name = 'user2'")
        db.commit()
        db.close()
    result = run("--config", config, "revoke", "user2@corp.example", "--yes")
    assert result.exit_code == 0, result.output
    assert "Nothing to do" in result.output and "no case opened" in result.output
    as_json = run("--config", config, "revoke", "user2@corp.example", "--yes", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.output)["case"] is None
    assert cases(home) == []


def test_revoke_when_every_account_is_protected_exits_2_naming_them_with_no_case(make_company, run, home):
    company = make_company(systems=2, admins=("user1",))
    result = run("--config", str(company.config_path), "revoke", "user1@corp.example", "--yes")
    assert result.exit_code == 2, result.output
    assert "sys0 user1: administrator account" in result.output
    assert "sys1 user1: administrator account" in result.output
    assert cases(home) == []  # no case, so no checklist tasks either
    assert company.changes("sys0") == [] and company.changes("sys1") == []


def test_revoke_of_a_person_with_a_recent_complete_case_needs_again(make_company, run, home):
    company = make_company(systems=1)
    config = str(company.config_path)
    first = run("--config", config, "revoke", "user1@corp.example", "--yes", "--json")
    assert first.exit_code == 0, first.output
    case = json.loads(first.output)["case"]
    company.extra["cases"] = {"again_within": "30d"}
    config = str(company.write_config())
    # the accounts are disabled but still listed: discovery finds them, the plan has actions again
    second = run("--config", config, "revoke", "user1@corp.example", "--yes")
    assert second.exit_code == 2, second.output
    assert case in second.output and "--again" in second.output
    assert [c["id"] for c in cases(home)] == [case]
    third = run("--config", config, "revoke", "user1@corp.example", "--yes", "--again", "--json")
    assert third.exit_code == 0, third.output
    assert len(cases(home)) == 2


def test_again_within_zero_never_asks(make_company, run, home):
    company = make_company(systems=1)
    company.extra["cases"] = {"again_within": "0s"}
    config = str(company.write_config())
    assert run("--config", config, "revoke", "user1@corp.example", "--yes").exit_code == 0
    assert run("--config", config, "revoke", "user1@corp.example", "--yes").exit_code == 0
    assert len(cases(home)) == 2


def test_revoke_of_accounts_no_connector_can_act_on_exits_3_naming_them_with_no_case(make_company, run, home, tmp_path):
    company = make_company(systems=1)
    policy = tmp_path / "licences.yaml"
    policy.write_text("name: licences\nactions: [remove_licenses]\n")
    company.extra = {"policies": [str(policy)]}
    config = str(company.write_config())
    result = run("--config", config, "revoke", "user1@corp.example", "--policy", "licences", "--yes")
    assert result.exit_code == 3, result.output
    assert "sys0 user1: remove_licenses is not supported" in result.output
    assert cases(home) == []


def test_revoke_dry_run_exits_3_when_a_system_cannot_be_searched(sandbox, tmp_path, run):
    config = copy.deepcopy(sandbox.config())
    wrong = tmp_path / "wrong-token"
    wrong.write_text("xoxb-not-the-token")
    config["connectors"]["slack"]["settings"]["token"] = f"file:{wrong}"
    result = run("--config", _write(tmp_path, config), "revoke", _person(sandbox).email, "--dry-run")
    assert result.exit_code == 3, result.output
    assert "Dry run" in result.output
