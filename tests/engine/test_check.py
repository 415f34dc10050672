"""``offboard check``: what a person still holds, asked of every system read-only; every case ends with it."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from offboard import CaseStatus
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine
from offboard.sandbox import Sandbox

from .. import _fakes
from .._smtp import mail_notifier, wait_for


def rejoin(company, system: str, login: str, groups: list[str]) -> None:
    """Put ``login`` back into ``groups`` directly in the system, behind offboard's back."""
    db = _fakes.open_db(company.systems[system])
    db.execute("update accounts set groups = ? where name = ?", (json.dumps(groups), login))
    db.close()


def test_check_exits_0_when_nothing_is_left_and_3_naming_a_group_rejoined_behind_offboards_back(make_company, run):
    company = make_company(systems=2)
    config = str(company.config_path)
    before = run("--config", config, "check", "user1@corp.example")
    assert before.exit_code == 3  # not offboarded yet: enabled accounts and memberships everywhere
    assert "sys0 user1 disable_account" in before.output
    assert run("--config", config, "revoke", "user1@corp.example", "--yes").exit_code == 0
    clean = run("--config", config, "check", "user1@corp.example", "--json")
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["clean"] is True and json.loads(clean.output)["checked"] == ["sys0", "sys1"]
    writes = company.changes("sys1")
    rejoin(company, "sys1", "user1", ["finance"])
    found = run("--config", config, "check", "user1@corp.example")
    assert found.exit_code == 3
    assert found.output.strip().splitlines() == [
        "left user1@corp.example: sys1 user1 remove_memberships: user1: groups is still finance"
    ]
    assert company.changes("sys1") == writes  # read-only


def test_check_exits_3_when_a_system_cannot_be_searched(make_company, run):
    company = make_company(systems=2)
    _fakes.add_faults(company.systems["sys1"], (401, None))
    result = run("--config", str(company.config_path), "check", "user1@corp.example")
    assert result.exit_code == 3
    assert "not searched user1@corp.example: sys1: AuthError" in result.output


def test_every_case_ends_with_a_residual_check_and_a_leftover_makes_the_work_owed_again(make_company, run):
    company = make_company(systems=1)
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        result = engine.revoke("user1@corp.example")
        assert result.status == CaseStatus.COMPLETE
        rejoin(company, "sys0", "user1", ["staff"])  # re-added between the read-back and a later close
        again = engine.close_case(result.case_id)  # as resume closes a straggler
        assert again.status == CaseStatus.INCOMPLETE
        assert "residual check: user1: groups is still staff" in again.detail
        retried = engine.retry_owed(force=True)
        assert [r.status for r in retried] == [CaseStatus.COMPLETE]
        assert company.state("sys0", "user1")["groups"] == []
    finally:
        engine.close()
    entries = [json.loads(x) for x in (data_dir() / "audit" / "entries.jsonl").read_bytes().splitlines()]
    types = [(e["type"], e.get("clean")) for e in entries if e.get("case") == result.case_id]
    closes = [i for i, (t, _) in enumerate(types) if t == "case_closed"]
    assert len(closes) == 3 and all(types[i - 1][0] == "residual_check" for i in closes)
    assert [c for t, c in types if t == "residual_check"] == [True, False, True]
    verify = run("audit", "verify")
    assert verify.exit_code == 0, verify.output


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(people=12, seed=7) as sb:
        yield sb


def test_check_finds_a_github_collaborator_and_an_invitation_and_a_google_group_rejoined_in_the_sandbox(
    sandbox, tmp_path, run
):
    config = copy.deepcopy(sandbox.config())
    person = next(
        i
        for i in sandbox.company.identities
        if i.kind == "person" and not i.admin and {"github", "google_workspace"} <= set(i.systems) and i.groups
    )
    config["connectors"]["github"]["settings"]["accounts"] = {person.email: person.github_login}
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(config))
    revoke = run("--config", str(path), "revoke", person.email, "--yes", "--json")
    assert revoke.exit_code == 0, revoke.output
    assert run("--config", str(path), "check", person.email).exit_code == 0
    github = sandbox.sim("github")
    github.members[person.github_login.lower()]["state"] = "collaborator"  # re-invited as an outside collaborator
    github.invite(email=person.email)  # and invited to join again by email, which needs no GitHub account yet
    google = sandbox.sim("google_workspace")
    uid = google.account(person.email)["id"]
    group = next(g for g in google.groups.values() if g["name"] == person.groups[0])
    group["members"][uid] = "MEMBER"
    result = run("--config", str(path), "check", person.email)
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert any(
        f"github {person.github_login} disable_account" in line and "outside collaborator" in line for line in lines
    )
    assert any(
        f"google_workspace {person.email} remove_memberships" in line and group["email"] in line for line in lines
    ), lines
    assert f"github {person.email} disable_account: pending invitation to {github.org} as direct_member" in (
        result.output
    )
    github.invitations.clear()


def test_a_sweep_with_check_since_finds_and_notifies_what_recent_leavers_still_hold(make_company, tmp_path, run, smtp):
    from ..inventory._support import write_hr

    company = make_company(systems=1, people=6)
    hr = write_hr(tmp_path / "hr.json", company.people)
    company.extra = {
        "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
        "sweep": {"check_since": "30d"},
        "notifiers": mail_notifier(smtp, "residual"),
    }
    config = str(company.write_config())
    assert run("--config", config, "revoke", "user1@corp.example", "--yes").exit_code == 0
    clean = run("--config", config, "sweep", "--json")
    assert clean.exit_code == 0, clean.output
    assert "1 recent leaver(s) checked, 0 still hold access" in json.loads(clean.stdout)["message"]
    rejoin(company, "sys0", "user1", ["vpn"])
    found = run("--config", config, "sweep", "--json")
    assert found.exit_code == 3
    report = json.loads(found.stdout)
    assert [(r["person"], [x["kind"] for x in r["leftovers"]]) for r in report["residual"]] == [
        ("user1@corp.example", ["remove_memberships"])
    ]
    wait_for(lambda: len(smtp.messages) >= 1)
    _, message = smtp.messages[-1]
    assert "still hold access" in message["Subject"] and "groups is still vpn" in message.get_content()
    bad = company.extra | {"sweep": {"check_since": "soon"}}
    company.extra = bad
    wrong = run("--config", str(company.write_config()), "sweep")
    assert wrong.exit_code == 2 and "check_since" in wrong.output


def test_check_names_an_app_password_readded_behind_offboards_back_in_one_line(tmp_path, run):
    """The acceptance test of the check: after a complete revoke, an app password the person adds again in
    their Google account settings is found, named once (not also as the read-back's count), and exits 3."""
    with Sandbox(people=8, seed=11, systems=("google_workspace",)) as sandbox:
        person = next(
            i
            for i in sandbox.company.identities
            if i.kind == "person" and not i.admin and "google_workspace" in i.systems and i.app_passwords
        )
        path = tmp_path / "offboard.yaml"
        path.write_text(yaml.safe_dump(sandbox.config()))
        _app_password_readded(sandbox, person, path, run)


def _app_password_readded(sandbox, person, path, run):
    revoke = run("--config", str(path), "revoke", person.email, "--yes")
    assert revoke.exit_code == 0, revoke.output
    clean = run("--config", str(path), "check", person.email)
    assert clean.exit_code == 0, clean.output
    google = sandbox.sim("google_workspace")
    google.log.clear()
    google.add_app_password(person.email, "Thunderbird", created_ms=1767225600000)  # 2026-01-01
    result = run("--config", str(path), "check", person.email)
    assert result.exit_code == 3, result.output
    assert result.output.strip().splitlines() == [
        f"left {person.email}: google_workspace {person.email} revoke_tokens: app password 'Thunderbird' created 2026-01-01"
    ]
    assert {e.method for e in google.log.entries() if e.path != "/token"} == {"GET"}  # read-only


def test_a_system_whose_checks_hang_does_not_hold_up_another_systems_checks(make_company):
    """A bulk run's closing checks run on each system's own threads: with the engine's shared pool cut to one
    thread, sys1 is still asked while sys0's read-back hangs (before, sys1's check queued behind sys0's)."""
    import threading

    from offboard.engine._check import residual
    from offboard.engine._schedule import Gate

    company = make_company(systems=2)
    config = load_config(company.config_path)
    config.limits.workers = 1
    engine = Engine.open(config, data_dir())
    released, asked, reports = threading.Event(), threading.Event(), []
    try:
        person = engine.resolve("user1@corp.example")
        slow, quick = engine.connector("sys0"), engine.connector("sys1")
        slow_verify, quick_verify = slow.verify, quick.verify

        def hang(action, receipt=None):
            released.wait(10)
            return slow_verify(action, receipt)

        def seen(action, receipt=None):
            asked.set()
            return quick_verify(action, receipt)

        slow.verify, quick.verify = hang, seen
        closing = Gate()  # a bulk run's, with every system through
        checking = threading.Thread(target=lambda: reports.append(residual(engine, person, gate=closing)))
        checking.start()
        try:
            assert asked.wait(5), "sys1 was not asked while sys0's read-back hung"
        finally:
            released.set()
            checking.join(15)
        assert sorted(reports[0].checked) == ["sys0", "sys1"] and not reports[0].errors
    finally:
        released.set()
        engine.close()
