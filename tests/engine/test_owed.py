"""Owed work: a failed action stays owed and is retried (with a backoff) until verified, abandoned or escalated."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from offboard import CaseStatus
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine

from .._smtp import mail_notifier, wait_for
from ..inventory._support import events, write_hr

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def open_engine(company, at: datetime) -> Engine:
    engine = Engine.open(load_config(company.config_path), data_dir(), clock=lambda: at)
    return engine


def failed_memberships(company) -> str:
    """user1's case on sys0 fails remove_memberships (403) after disabling the account: incomplete."""
    company.write_config(sys0={"forbid": ["remove_memberships"]})
    engine = open_engine(company, T0)
    try:
        result = engine.revoke("user1@corp.example")
    finally:
        engine.close()
    assert result.status == CaseStatus.INCOMPLETE
    state = company.state("sys0", "user1")
    assert state["enabled"] is False and state["groups"] == ["staff", "team-1"]  # inactive, yet still a member
    company.write_config()  # the permission is granted: the fault has stopped
    return result.case_id


def test_a_failed_action_on_an_already_inactive_account_is_retried_until_verified(make_company):
    company = make_company(systems=2)
    case_id = failed_memberships(company)
    engine = open_engine(company, T0 + timedelta(minutes=1))
    try:
        assert engine.resume() == []  # within the first backoff (cases.retry_after 5m): not yet
        assert company.state("sys0", "user1")["groups"] == ["staff", "team-1"]
        engine.clock = lambda: T0 + timedelta(minutes=6)
        results = engine.resume()
    finally:
        engine.close()
    assert [(r.case_id, r.status) for r in results] == [(case_id, CaseStatus.COMPLETE)]
    assert company.state("sys0", "user1")["groups"] == []
    kinds = [k for a, k in company.changes("sys0") if a == "id-user1"]
    assert kinds.count("disable_account") == 1  # only the owed action ran again
    retries = events(data_dir(), "owed_retry")
    assert [(e["case_id"], e["payload"]["attempt"], e["payload"]["actions"][0]["kind"]) for e in retries] == [
        (case_id, 1, "remove_memberships")
    ]


def test_retries_back_off_doubling_up_to_retry_max(make_company):
    company = make_company(systems=1)
    company.extra["cases"] = {"retry_after": "5m", "retry_max": "15m"}
    company.write_config()
    case_id = failed_memberships(company)
    company.write_config(sys0={"forbid": ["remove_memberships"]})  # the fault goes on
    tried_at = []
    for minutes in range(0, 60):
        engine = open_engine(company, T0 + timedelta(minutes=minutes))
        try:
            if engine.resume():
                tried_at.append(minutes)
        finally:
            engine.close()
    # after the close at 0: +5, then +10, then +15 (capped), +15, ...
    assert tried_at == [5, 15, 30, 45]
    engine = open_engine(company, T0 + timedelta(minutes=60))
    try:
        assert engine.store.case(case_id)["status"] == "incomplete"
    finally:
        engine.close()


def test_cases_owed_retry_and_status_show_and_clear_owed_work(make_company, run):
    company = make_company(systems=1)
    case_id = failed_memberships(company)
    config = str(company.config_path)
    owed = run("--config", config, "cases", "owed", "--json")
    assert owed.exit_code == 3
    [item] = json.loads(owed.output)
    assert item["case"] == case_id and [a["kind"] for a in item["actions"]] == ["remove_memberships"]
    status = run("--config", config, "status")
    assert "Owed: 1 action(s) in 1 case(s)" in status.output
    retry = run("--config", config, "cases", "retry", case_id[-6:])  # now, whatever the backoff
    assert retry.exit_code == 0, retry.output
    assert "0 still incomplete" in retry.output
    assert company.state("sys0", "user1")["groups"] == []
    assert run("--config", config, "cases", "owed").exit_code == 0
    assert run("--config", config, "status", case_id).exit_code == 0  # complete now
    verify = run("audit", "verify")
    assert verify.exit_code == 0, verify.output


def test_abandon_is_recorded_with_who_and_why_and_stops_retries(make_company, run):
    company = make_company(systems=1)
    case_id = failed_memberships(company)
    config = str(company.config_path)
    [item] = json.loads(run("--config", config, "cases", "owed", "--json").output)
    action = item["actions"][0]["id"]
    missing = run(
        "--config", config, "cases", "abandon", case_id, "--action", str(action), "--reason", " ", "--by", "x"
    )
    assert missing.exit_code == 2 and "--reason" in missing.output
    wrong = run("--config", config, "cases", "abandon", case_id, "--action", "99999", "--reason", "r", "--by", "x")
    assert wrong.exit_code == 2 and "has no action 99999" in wrong.output
    done = run(
        "--config", config, "cases", "abandon", case_id, "--action", str(action),
        "--reason", "group is managed by HR sync", "--by", "ana",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    [entry] = events(data_dir(), "owed_abandoned")
    assert entry["payload"]["by"] == "ana" and entry["payload"]["reason"] == "group is managed by HR sync"
    assert run("--config", config, "cases", "owed").exit_code == 0  # nothing owed any more
    assert run("--config", config, "cases", "retry").output.strip() == "Nothing owed."
    status = run("--config", config, "status", case_id)
    assert status.exit_code == 3 and "abandoned by ana" in status.output  # the case stays incomplete, honestly
    again = run("--config", config, "cases", "abandon", case_id, "--action", str(action), "--reason", "r", "--by", "x")
    assert again.exit_code == 2 and "is not owed" in again.output
    verify = run("audit", "verify")  # intact; its one finding is the truth: closed incomplete (counts agree)
    assert "result: intact, with compliance findings" in verify.output
    assert "COMPLIANCE FINDINGS (1)" in verify.output and "closed incomplete" in verify.output


def test_work_owed_past_escalate_after_is_escalated_once_through_the_notifiers(make_company, smtp):
    company = make_company(systems=1)
    company.extra["notifiers"] = mail_notifier(smtp, "owed")
    company.extra["cases"] = {"escalate_after": "3d"}
    case_id = failed_memberships(company)
    company.write_config(sys0={"forbid": ["remove_memberships"]})  # still failing
    for at in (T0 + timedelta(days=2), T0 + timedelta(days=3, hours=1), T0 + timedelta(days=4)):
        engine = open_engine(company, at)
        try:
            engine.resume()
        finally:
            engine.close()
    wait_for(lambda: len(smtp.messages) >= 1)
    assert len(smtp.messages) == 1
    _, message = smtp.messages[0]
    assert case_id in message["Subject"] and "user1@corp.example" in message["Subject"]
    assert "remove_memberships" in message.get_content()
    assert len(events(data_dir(), "owed_escalated")) == 1


def test_a_sweep_retries_owed_work_of_people_whose_accounts_already_count_as_inactive(make_company, tmp_path, run):
    """The bug: the next sweep re-ran only people whose disable had failed; failed memberships stayed for good."""
    company = make_company(systems=2, people=12)
    hr = write_hr(tmp_path / "hr.json", company.people, leavers=("user4",))
    company.extra = {
        "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
        "limits": {"max_cases": 50, "max_percent": 50},
        "cases": {"retry_after": "0s"},
    }
    # a 403 stops the whole connector for this run (an authorisation problem): one leaver keeps it deterministic
    company.write_config(sys0={"forbid": ["remove_memberships"]})
    first = run("--config", str(company.config_path), "sweep", "--json")
    assert first.exit_code == 3, first.output
    assert json.loads(first.stdout)["message"] == "1 case(s) opened and run, 1 incomplete"
    assert company.state("sys0", "user4")["enabled"] is False and company.state("sys0", "user4")["groups"]
    dry = run("--config", str(company.config_path), "sweep", "--dry-run", "--json")
    assert json.loads(dry.stdout)["plans"] == []  # the account counts as inactive: no new case would pick it up
    company.write_config()  # the fault stops
    second = run("--config", str(company.config_path), "sweep", "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["message"] == "nothing to do; owed work of 1 earlier case(s) retried, 0 still incomplete"
    assert company.state("sys0", "user4")["groups"] == []


def test_a_system_that_could_not_be_searched_is_searched_again_and_its_accounts_disabled(make_company):
    """A system whose discovery failed has no actions in the case, so nothing of it is owed: the person kept
    their account there for good. Once the backoff passes, a new case searches every system again."""
    from .. import _fakes

    company = make_company(systems=2)
    _fakes.add_faults(company.systems["sys1"], (403, None))  # sys1 refuses the search once
    engine = open_engine(company, T0)
    try:
        first = engine.revoke("user1@corp.example")
        assert first.status == CaseStatus.INCOMPLETE
        assert engine.store.case(first.case_id)["detail"].startswith("sys1: discovery failed: ")
        assert company.state("sys1", "user1")["enabled"] is True  # never found, never disabled
        assert engine.resume() == []  # within the first backoff: not yet
    finally:
        engine.close()
    engine = open_engine(company, T0 + timedelta(minutes=6))  # a later `offboard resume`
    try:
        results = engine.resume()
        again = engine.resume()  # handed over once: the old case is not searched again
    finally:
        engine.close()
    assert [x.status for x in results] == [CaseStatus.COMPLETE] and again == []
    assert company.state("sys1", "user1")["enabled"] is False
    handed = events(data_dir(), "owed_rediscovered")
    assert [(e["case_id"], e["payload"]["systems"], e["payload"]["new_case"]) for e in handed] == [
        (first.case_id, ["sys1"], results[0].case_id)
    ]
