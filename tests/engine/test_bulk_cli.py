"""``offboard revoke --from-file`` / ``plan --from-file``: guarded like a sweep, ETA shown first."""

from __future__ import annotations

import json

import pytest
import yaml

from offboard.engine._bulk import read_people


@pytest.fixture
def company(make_company):
    company = make_company(systems=2, people=6, admins=("user5",))
    data = yaml.safe_load(company.config_path.read_text())
    data["connectors"]["sys0"]["rate"] = 50.0  # a published limit: the ETA names it
    data["limits"] = {"max_cases": 3}
    company.config_path.write_text(yaml.safe_dump(data))
    return company


def _file(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_plan_from_a_csv_prints_the_eta_per_system_and_writes_nothing(run, company, tmp_path):
    people = _file(tmp_path, "people.csv", "email,reason\nuser0@corp.example,layoff\nuser1@corp.example,layoff\n")
    result = run("--config", str(company.config_path), "plan", "--from-file", people, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dry_run"] and data["people"] == ["user0@corp.example", "user1@corp.example"]
    systems = {s["system"]: s for s in data["eta"]["systems"]}
    # 2 people x 3 actions (sessions, disable, memberships) x 2 calls (write, read-back) on each system,
    # and the residual check at each close reads disable and memberships back once more
    assert systems["sys0"]["calls"] == 12 + 4 and systems["sys0"]["critical_calls"] == 8
    assert systems["sys0"]["binding_limit"] == "none" or "system" in systems["sys0"]["binding_limit"]
    assert data["eta"]["cleanup_end_seconds"] >= data["eta"]["access_cut_seconds"] >= 0
    assert company.changes("sys0") == []

    table = run("--config", str(company.config_path), "plan", "--from-file", people)
    assert table.exit_code == 0, table.output
    assert "access cut" in table.output and "sys0" in table.output


def test_a_list_over_the_guard_halts_with_its_eta_until_approved(run, company, tmp_path, home):
    people = _file(tmp_path, "people.json", json.dumps([f"user{i}@corp.example" for i in range(5)]))
    cfg = str(company.config_path)
    halted = run("--config", cfg, "revoke", "--from-file", people, "--yes", "--json")
    assert halted.exit_code == 3
    data = json.loads(halted.stdout)
    assert data["halted"] and any("max_cases is 3" in r for r in data["reasons"])
    assert data["eta"]["systems"] and company.changes("sys0") == []

    no_name = run("--config", cfg, "revoke", "--from-file", people, "--yes", "--approve")
    assert no_name.exit_code == 2 and "--approver" in no_name.output

    done = run("--config", cfg, "revoke", "--from-file", people, "--yes", "--approve", "--approver", "Dana", "--json")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["approved_by"] == "Dana" and len(data["cases"]) == 5
    assert all(c["status"] == "complete" for c in data["cases"])
    assert set(data["measured"]) == {"sys0", "sys1"}
    assert data["measured"]["sys0"]["access_cut_seconds"] <= data["measured"]["sys0"]["cleanup_end_seconds"]
    # the audit log keeps both: the ETA in the approval, the measured times (whole ms) in the bulk entry
    from offboard.state._store import Store

    store = Store(f"sqlite:///{home / 'offboard.db'}")
    try:
        entries = {e["type"]: json.loads(e["payload"]) for e in store.events()}
    finally:
        store.close()
    assert entries["approval"]["scope"] == "bulk" and entries["approval"]["eta"]["systems"]
    assert isinstance(entries["bulk"]["measured"]["sys0"]["access_cut_ms"], int)


def test_protected_accounts_are_never_planned(run, company, tmp_path):
    people = _file(tmp_path, "people.txt", "user5@corp.example\nuser0@corp.example\n")
    result = run("--config", str(company.config_path), "plan", "--from-file", people, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [p["person"]["id"] for p in data["plans"]] == ["user0@corp.example"]
    assert data["nothing_to_do"] == [{"person": "user5@corp.example", "why": "every account found is protected"}]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("people.json", "{not json", "line 1: not JSON"),
        ("people.json", '{"people": []}', "must hold a JSON list"),
        ("people.json", '["user0@corp.example", 7]', "item 1: expected a non-empty string"),
        ("people.csv", "name,team\nx,y\n", "line 1: the header names none of the columns"),
        ("people.csv", "email,team\n,y\n", "line 2: no person in column 1"),
        ("people.csv", "email\n", "lists nobody"),
        ("people.xlsx", "x", "must end in .csv or .json"),
    ],
)
def test_a_bad_people_file_is_named_with_the_line(run, company, tmp_path, name, text, message):
    path = _file(tmp_path, name, text)
    result = run("--config", str(company.config_path), "revoke", "--from-file", path, "--yes")
    assert result.exit_code == 2
    assert message in result.output and name in result.output
    assert "Traceback" not in result.output


def test_an_unknown_person_stops_the_run_before_anything_is_planned(run, company, tmp_path):
    data = yaml.safe_load(company.config_path.read_text())
    people_csv = tmp_path / "hr.csv"
    people_csv.write_text("id,email\nuser0,user0@corp.example\n")
    data["people"] = [{"type": "hr_export", "settings": {"path": str(people_csv)}}]
    company.config_path.write_text(yaml.safe_dump(data))
    path = _file(tmp_path, "people.csv", "email\nuser0@corp.example\nnobody@corp.example\n")
    result = run("--config", str(company.config_path), "revoke", "--from-file", path, "--yes")
    assert result.exit_code == 2, result.output
    assert "people.csv: line 3" in result.output and "nobody@corp.example" in result.output
    assert company.changes("sys0") == []


def test_person_and_file_together_are_refused(run, company, tmp_path):
    path = _file(tmp_path, "people.csv", "user0@corp.example\n")
    result = run("--config", str(company.config_path), "revoke", "user1@corp.example", "--from-file", path)
    assert result.exit_code == 2 and "not both" in result.output


def test_read_people_drops_repeats_and_keeps_where_each_came_from(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps([{"email": "A@corp.example"}, "a@corp.example", {"employee_id": "E7"}]))
    assert read_people(path) == [("A@corp.example", f"{path}: item 0"), ("E7", f"{path}: item 2")]


def test_a_list_with_a_step_offboard_cannot_undo_halts_until_allowed(run, company, tmp_path, monkeypatch):
    """As a sweep does: a bulk run whose plans hold a destructive step halts before any action; with
    --allow-destructive it runs, and the audit log records what was allowed."""
    from offboard.models import ActionKind

    from .._fakes import TestSystem

    monkeypatch.setattr(TestSystem, "destructive_kinds", frozenset({ActionKind.DISABLE_ACCOUNT}))
    data = yaml.safe_load(company.config_path.read_text())
    data["limits"] = {"max_cases": 3, "max_percent": 100}  # only the destructive step halts this run
    company.config_path.write_text(yaml.safe_dump(data))
    people = _file(tmp_path, "people.txt", "user0@corp.example\nuser1@corp.example\n")
    cfg = str(company.config_path)
    halted = run("--config", cfg, "revoke", "--from-file", people, "--yes", "--json")
    assert halted.exit_code == 3, halted.output
    data = json.loads(halted.stdout)
    assert data["halted"] and data["destructive"] and data["destructive"] == data["reasons"]
    assert "--allow-destructive" in data["message"] and company.changes("sys0") == []

    done = run("--config", cfg, "revoke", "--from-file", people, "--yes", "--allow-destructive", "--json")
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.stdout)["cases"]) == 2

    alone = run("--config", cfg, "revoke", "user2@corp.example", "--allow-destructive", "--yes")
    assert alone.exit_code == 2 and "--from-file" in alone.output
