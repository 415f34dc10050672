"""Inventory sync and sweeps against SQLite-backed test systems (the `testsys` connector)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from offboard.config._config import load_config
from offboard.engine._engine import Engine
from offboard.inventory._inventory import Correlator, PeopleIndex, Rules, load_mapping, sync
from offboard.inventory._sweep import past_end, run_sweep
from offboard.models import Account, Person

from .. import _fakes
from ._support import cases, events, inventory_rows, write_hr

LIMITS = {"max_cases": 50, "max_percent": 20}


def setup(make_company, tmp_path, people=30, leavers=("user3", "user7", "user11"), limits=LIMITS, **extra):
    company = make_company(systems=3, people=people)
    hr = write_hr(tmp_path / "hr.json", company.people, leavers)
    company.extra = {"people": [{"type": "hr_export", "settings": {"path": str(hr)}}], "limits": limits, **extra}
    company.write_config()
    return company, hr


def test_sync_correlates_and_keeps_first_seen(make_company, tmp_path, run, home):
    company, _ = setup(make_company, tmp_path, people=120)  # more than two pages of 50 per system
    _fakes.seed(company.systems["sys0"], [("ghost", "ghost@corp.example")])
    result = run("--config", str(company.config_path), "inventory", "sync", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [(s["system"], s["accounts"], s["matched"], s["pages"]) for s in report["systems"]] == [
        ("sys0", 121, 120, 3),
        ("sys1", 120, 120, 3),
        ("sys2", 120, 120, 3),
    ]
    rows = inventory_rows(home)
    assert len(rows) == 361
    ghost = next(r for r in rows if r["name"] == "ghost")
    assert ghost["person_id"] is None
    user5 = [r for r in rows if r["name"] == "user5"]
    assert {r["person_id"] for r in user5} == {"user5@corp.example"} and {r["matched_by"] for r in user5} == {"email"}
    first = {(r["system"], r["account_id"]): (r["first_seen"], r["last_seen"]) for r in rows}

    db = _fakes.open_db(company.systems["sys0"])  # the ghost leaves sys0
    db.execute("delete from accounts where name = 'ghost'")
    db.close()
    result = run("--config", str(company.config_path), "inventory", "sync", "--json")
    assert json.loads(result.output)["systems"][0]["removed"] == 1
    rows = inventory_rows(home)
    assert len(rows) == 360
    for r in rows:
        seen_first, seen_last = first[(r["system"], r["account_id"])]
        assert r["first_seen"] == seen_first and r["last_seen"] > seen_last
    assert len(events(home, "inventory_sync")) == 6


def test_a_failing_system_keeps_its_last_inventory(make_company, tmp_path, run, home):
    company, _ = setup(make_company, tmp_path)
    run("--config", str(company.config_path), "inventory", "sync")
    _fakes.add_faults(company.systems["sys1"], *[(401, None)] * 3)
    result = run("--config", str(company.config_path), "inventory", "sync", "--json")
    assert result.exit_code == 3
    report = json.loads(result.output)
    failed = [s for s in report["systems"] if s["status"] == "failed"]
    assert [s["system"] for s in failed] == ["sys1"] and "AuthError" in failed[0]["error"]
    assert sum(r["system"] == "sys1" for r in inventory_rows(home)) == 30


def test_show_prints_a_persons_accounts_as_json_and_csv(make_company, tmp_path, run):
    company, _ = setup(make_company, tmp_path)
    run("--config", str(company.config_path), "inventory", "sync")
    result = run("--config", str(company.config_path), "inventory", "show", "E0004", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["system"], r["name"], r["person_id"], r["active"]) for r in rows] == [
        (f"sys{i}", "user4", "user4@corp.example", True) for i in range(3)
    ]
    result = run("--config", str(company.config_path), "inventory", "show", "user4@corp.example", "--csv")
    parsed = list(csv.DictReader(io.StringIO(result.output)))
    assert [r["system"] for r in parsed] == ["sys0", "sys1", "sys2"] and parsed[0]["active"] == "yes"
    result = run("--config", str(company.config_path), "inventory", "show", "nobody@corp.example")
    assert result.exit_code == 2 and "nobody@corp.example" in result.output


def test_sweep_revokes_exactly_the_leavers_and_a_second_sweep_opens_nothing(make_company, tmp_path, run, home):
    leavers = ("user3", "user7", "user11")
    company, _ = setup(make_company, tmp_path, leavers=leavers)
    result = run("--config", str(company.config_path), "sweep", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert sorted(c["person"] for c in body["cases"]) == sorted(f"{u}@corp.example" for u in leavers)
    assert {c["status"] for c in body["cases"]} == {"complete"}
    for system in company.systems:
        touched = {account for account, _ in company.changes(system)}
        assert touched == {f"id-{u}" for u in leavers}
        for u in leavers:
            assert company.state(system, u)["enabled"] is False
        assert company.state(system, "user4")["enabled"] is True
    assert {c["trigger"] for c in cases(home)} == {"sweep"}
    before = {s: len(company.changes(s)) for s in company.systems}

    again = run("--config", str(company.config_path), "sweep", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["cases"] == []
    assert len(cases(home)) == 3
    assert {s: len(company.changes(s)) for s in company.systems} == before
    assert len(events(home, "sweep")) == 2


def test_a_corrupted_export_halts_before_any_action_until_approved(make_company, tmp_path, run, home):
    company, _ = setup(
        make_company,
        tmp_path,
        people=20,
        leavers=[f"user{i}" for i in range(12)],
        limits={"max_cases": 10, "max_percent": 10},
    )  # 60% "left"
    result = run("--config", str(company.config_path), "sweep")
    assert result.exit_code == 3
    assert "sweep halted before any action" in result.output
    assert "would open 12 cases and limits.max_cases is 10" in result.output
    assert "would touch 12 of 20 active accounts in sys0 (60.0%)" in result.output
    assert "--approve --approver NAME" in result.output
    assert all(company.changes(s) == [] for s in company.systems)
    assert cases(home) == []
    halted = events(home, "sweep_halted")
    assert len(halted) == 1 and halted[0]["payload"]["cases"] == 12 and len(halted[0]["payload"]["reasons"]) == 4
    # the approval request carries the ETA: per system the calls (12 people x 3 actions x write + read-back,
    # and the residual check's read-back of disable and memberships at each close)
    eta = halted[0]["payload"]["eta"]
    assert {s["system"]: s["calls"] for s in eta["systems"]} == {"sys0": 96, "sys1": 96, "sys2": 96}
    assert eta["cleanup_end_seconds"] >= eta["access_cut_seconds"] >= 0
    assert "Everyone's access cut in about" in result.output

    result = run("--config", str(company.config_path), "sweep", "--approve")
    assert result.exit_code == 2 and "--approver" in result.output
    assert cases(home) == []

    result = run("--config", str(company.config_path), "sweep", "--approve", "--approver", "Dana Reviewer", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["approved_by"] == "Dana Reviewer"
    approvals = [e for e in events(home, "approval") if e["payload"].get("scope") == "sweep"]
    assert len(approvals) == 1 and approvals[0]["payload"]["approver"] == "Dana Reviewer"
    assert approvals[0]["payload"]["reasons"] == halted[0]["payload"]["reasons"]
    opened = cases(home)
    assert len(opened) == 12 and all("approved by Dana Reviewer" in c["reason"] for c in opened)


def test_dry_run_changes_nothing_and_says_it_would_halt(make_company, tmp_path, run, home):
    company, _ = setup(
        make_company, tmp_path, leavers=[f"user{i}" for i in range(10)], limits={"max_cases": 5, "max_percent": 50}
    )
    result = run("--config", str(company.config_path), "sweep", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["dry_run"] and not body["halted"] and len(body["plans"]) == 10
    assert body["reasons"] == ["it would open 10 cases and limits.max_cases is 5"]
    assert [s["critical_actions"] for s in body["eta"]["systems"]] == [20, 20, 20]  # sessions and disable
    assert cases(home) == [] and events(home, "sweep_halted") == []
    assert all(company.changes(s) == [] for s in company.systems)


def test_protected_and_admin_accounts_are_never_swept(make_company, tmp_path, run, home):
    company = make_company(systems=2, people=10, admins=("user2",))
    hr = write_hr(tmp_path / "hr.json", company.people, ["user1", "user2", "user3"])
    company.extra = {
        "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
        "limits": {"max_cases": 10, "max_percent": 50},
        "protected": ["user3"],
    }
    company.write_config()
    result = run("--config", str(company.config_path), "sweep", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert [c["person"] for c in body["cases"]] == ["user1@corp.example"]
    assert sorted(s["person"] for s in body["skipped"]) == ["user2@corp.example", "user3@corp.example"]
    for system in company.systems:
        assert {a for a, _ in company.changes(system)} == {"id-user1"}


def test_orphans_lists_unowned_and_inactive_owners_only(make_company, tmp_path, run):
    company = make_company(systems=2, people=8, admins=("user0",))
    hr = write_hr(
        tmp_path / "hr.json",
        company.people,
        (),
        user5={"active": False},
        user0={"id": "admin", "email": "x@corp.example"},
    )
    company.extra = {"people": [{"type": "hr_export", "settings": {"path": str(hr)}}]}
    company.write_config()
    _fakes.seed(company.systems["sys1"], [("svc-old", "svc-old@corp.example")])
    run("--config", str(company.config_path), "inventory", "sync")
    result = run("--config", str(company.config_path), "inventory", "orphans", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert sorted((r["system"], r["name"], r["why"]) for r in rows) == [
        ("sys0", "user5", "owner user5@corp.example is inactive"),
        ("sys1", "svc-old", "no owner"),
        ("sys1", "user5", "owner user5@corp.example is inactive"),
    ]
    everything = json.loads(
        run("--config", str(company.config_path), "inventory", "orphans", "--json", "--include-protected").output
    )
    assert {r["name"] for r in everything} == {"user5", "svc-old", "user0"}
    as_csv = run("--config", str(company.config_path), "inventory", "orphans", "--csv").output
    assert as_csv.splitlines()[0].startswith("system,account_id,name,email,active,admin,person_id")
    assert len(as_csv.splitlines()) == 4


def test_end_dates_are_read_in_the_persons_time_zone(tmp_path):
    from offboard.inventory._people import HRExport

    path = tmp_path / "hr.csv"
    path.write_text(
        "email,type,end_date,timezone\nkiri@x.example,contractor,2030-01-01,Pacific/Kiritimati\n"
        "pago@x.example,contractor,2030-01-01,Pacific/Pago_Pago\nexact@x.example,contractor,2030-01-01T09:00:00+00:00,UTC\n"
    )
    kiri, pago, exact = HRExport({"path": str(path)}).people()
    now = datetime(
        2030, 1, 1, 10, 30, tzinfo=UTC
    )  # Kiritimati (UTC+14) is already on Jan 2; Pago Pago (UTC-11) on Jan 1
    assert past_end(kiri, now) and not past_end(pago, now) and past_end(exact, now)
    naive = Person("n@x.example", end_date=datetime(2030, 1, 1, 23, 0), timezone="America/New_York")
    assert not past_end(naive, now) and past_end(naive, datetime(2030, 1, 2, 4, 0, 1, tzinfo=UTC))


def test_correlation_rules_mapping_aliases_and_employee_id(tmp_path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("gh:\n  octocat: alice@corp.example\n'*':\n  shared-login: E2\n")
    index = PeopleIndex(
        [
            Person("alice@corp.example", "alice@corp.example", aliases=("al@corp.example",), employee_id="E1"),
            Person("bob@corp.example", "bob@corp.example", employee_id="E2"),
        ]
    )
    correlate = Correlator(index, Rules(), load_mapping(mapping))
    assert correlate(Account("gh", "1", "octocat"), "github") == ("alice@corp.example", "mapping")
    assert correlate(Account("other", "9", "shared-login"), "scim") == ("bob@corp.example", "mapping")
    assert correlate(Account("gh", "2", "someone", "AL@corp.example"), "github") == ("alice@corp.example", "aliases")
    assert correlate(Account("entra", "3", "x@y", attributes={"employeeId": "e2"}), "entra") == (
        "bob@corp.example",
        "employee_id",
    )
    assert correlate(Account("entra", "4", "BOB@corp.example"), "entra") == ("bob@corp.example", "email")
    only_email = Correlator(index, Rules(correlate=["email"]), load_mapping(mapping))
    assert only_email(Account("gh", "1", "octocat"), "github") == (None, None)
    csv_map = tmp_path / "map.csv"
    csv_map.write_text("system,account,person\ngh,OctoCat,E1\n")
    assert load_mapping(csv_map) == {("gh", "octocat"): "E1"}
    csv_map.write_text("system,account\ngh,octocat\n")
    with pytest.raises(Exception, match="row 2 needs `account` and `person`"):
        load_mapping(csv_map)


def test_run_sweep_is_callable_by_the_server(make_company, tmp_path):
    company, _ = setup(make_company, tmp_path, leavers=("user1",))
    (tmp_path / "data").mkdir()
    engine = Engine.open(load_config(company.config_path), tmp_path / "data")
    try:
        result = run_sweep(engine, dry_run=True)
        assert [p.person.id for p in result.plans] == ["user1@corp.example"] and not result.cases
        result = run_sweep(engine)
        assert [c.person_id for c in result.cases] == ["user1@corp.example"] and result.ok
        assert run_sweep(engine, sync=False).cases == []  # the inventory already knows the accounts are disabled
        report = sync(engine)
        assert report.ok and report.people == 30
    finally:
        engine.close()
