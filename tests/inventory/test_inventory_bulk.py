"""``revoke --from-file --from-inventory``: a bulk run planned from the inventory, not by discovering everyone."""

from __future__ import annotations

import json

from .. import _fakes
from ._support import write_hr


def _company(make_company, tmp_path, people=8):
    company = make_company(systems=2, people=people)
    hr = write_hr(tmp_path / "hr.json", company.people)
    company.extra = {
        "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
        "limits": {"max_cases": 10, "max_percent": 60},
    }
    company.write_config()
    return company


def _ops(company, system):
    return [op for op, _, _ in _fakes.calls(company.systems[system])]


def _people_file(tmp_path, emails):
    path = tmp_path / "leavers.json"
    path.write_text(json.dumps(emails))
    return str(path)


def test_a_bulk_revoke_from_the_inventory_lists_each_system_and_discovers_nobody(make_company, tmp_path, run):
    company = _company(make_company, tmp_path)
    leavers = _people_file(tmp_path, ["user1@corp.example", "user2@corp.example", "user4@corp.example"])
    cfg = str(company.config_path)
    result = run("--config", cfg, "revoke", "--from-file", leavers, "--from-inventory", "--yes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [c["status"] for c in data["cases"]] == ["complete"] * 3
    assert [s["system"] for s in data["sync"]["systems"]] == ["sys0", "sys1"]
    assert "discovered" not in data
    for system in ("sys0", "sys1"):
        ops = _ops(company, system)
        assert "discover" not in ops and ops.count("list") == 1  # 8 accounts: one page of 50
        assert not company.state(system, "user1")["enabled"] and company.state(system, "user0")["enabled"]


def test_the_same_run_by_discovery_asks_every_system_about_every_person(make_company, tmp_path, run):
    """The baseline the inventory replaces (and proof the test above would see discovery if it happened)."""
    company = _company(make_company, tmp_path)
    leavers = _people_file(tmp_path, ["user1@corp.example", "user2@corp.example"])
    result = run("--config", str(company.config_path), "plan", "--from-file", leavers, "--json")
    assert result.exit_code == 0, result.output
    assert _ops(company, "sys0").count("discover") == 2 and "list" not in _ops(company, "sys0")


def test_where_the_inventory_cannot_answer_the_person_is_discovered_there_alone(make_company, tmp_path, run):
    company = _company(make_company, tmp_path)
    db = _fakes.open_db(company.systems["sys1"])  # an account with nothing to correlate it by
    db.execute("insert into accounts values ('id-svc', 'svc-build', null, null, 1, 0, '[]', 0)")
    db.close()
    cfg = str(company.config_path)
    assert run("--config", cfg, "inventory", "sync").exit_code == 0
    leavers = _people_file(tmp_path, ["user1@corp.example"])
    result = run("--config", cfg, "plan", "--from-file", leavers, "--from-inventory", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # the stored inventory ties user1's sys1 account to them, so sys1 has no open question for user1
    assert "discovered" not in data
    assert {a["system"] for a in data["plans"][0]["actions"]} == {"sys0", "sys1"}
    assert "discover" not in _ops(company, "sys0") and "discover" not in _ops(company, "sys1")

    # someone the inventory ties to no sys1 account: the unnamed account might be theirs; ask sys1 alone
    db = _fakes.open_db(company.systems["sys1"])
    db.execute("delete from accounts where id = 'id-user2'")
    db.close()
    assert run("--config", cfg, "inventory", "sync").exit_code == 0
    leavers = _people_file(tmp_path, ["user2@corp.example"])
    result = run("--config", cfg, "plan", "--from-file", leavers, "--from-inventory", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["discovered"] == {"sys1": 1}
    assert "discover" not in _ops(company, "sys0") and _ops(company, "sys1").count("discover") == 1


def test_a_system_never_synced_is_discovered_and_the_dry_run_writes_nothing(make_company, tmp_path, run):
    company = _company(make_company, tmp_path)
    leavers = _people_file(tmp_path, ["user1@corp.example", "user3@corp.example"])
    result = run("--config", str(company.config_path), "plan", "--from-file", leavers, "--from-inventory", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["discovered"] == {"sys0": 2, "sys1": 2} and "sync" not in data
    assert len(data["plans"]) == 2 and company.changes("sys0") == []
    assert "list" not in _ops(company, "sys0")


def test_planning_from_the_inventory_needs_a_people_source(make_company, tmp_path, run):
    company = make_company(systems=1, people=3)
    leavers = _people_file(tmp_path, ["user1@corp.example"])
    result = run("--config", str(company.config_path), "plan", "--from-file", leavers, "--from-inventory")
    assert result.exit_code != 0 and "needs a people source" in result.output


def test_a_long_list_reads_the_people_source_once_not_once_per_person(make_company, tmp_path, run, monkeypatch):
    from offboard.inventory._people import HRExport

    company = _company(make_company, tmp_path, people=30)
    reads = []
    listed = HRExport.people

    def counted(self):
        reads.append(1)
        yield from listed(self)

    monkeypatch.setattr(HRExport, "people", counted)
    leavers = _people_file(tmp_path, [f"user{i}@corp.example" for i in range(25)] + ["E0026"])  # an employee id too
    result = run("--config", str(company.config_path), "plan", "--from-file", leavers, "--from-inventory", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["people"] == [f"user{i}@corp.example" for i in range(25)] + ["user26@corp.example"]
    assert len(reads) <= 3  # the bulk lookup, the inventory's people index; never one per listed person
