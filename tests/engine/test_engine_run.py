"""The engine end to end against test systems: parallelism, retries, outcomes, undo."""

from __future__ import annotations

import json

import pytest

from offboard import CaseStatus, ConfigError, UnknownPerson
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine

from .. import _fakes


class FakeTime:
    """Sleeping advances the clock at once and is recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def open_engine(company, fake_time=None):
    engine = Engine.open(load_config(company.config_path), data_dir())
    if fake_time is not None:
        engine.sleep, engine.monotonic = fake_time.sleep, fake_time.monotonic
    return engine


def test_revoke_disables_everywhere_and_verifies(make_company):
    company = make_company(systems=3)
    engine = open_engine(company)
    result = engine.revoke("user1@corp.example")
    assert result.status == CaseStatus.COMPLETE
    assert {a["status"] for a in result.actions} == {"verified"}
    for system in company.systems:
        state = company.state(system, "user1")
        assert state["enabled"] is False and state["sessions"] == 0 and state["groups"] == []
        assert company.state(system, "user2")["enabled"] is True  # nobody else touched
    engine.close()


def test_systems_are_worked_on_in_parallel(make_company):
    company = make_company(systems=4)
    company.write_config(**{s: {"latency_ms": 80} for s in company.systems})
    engine = open_engine(company)
    engine.revoke("user0@corp.example")
    engine.close()
    spans = {s: [(a, b) for op, a, b in _fakes.calls(p) if op != "discover"] for s, p in company.systems.items()}
    first = {s: min(a for a, _ in v) for s, v in spans.items()}
    last = {s: max(b for _, b in v) for s, v in spans.items()}
    # every system started before any other system finished: they ran side by side
    assert max(first.values()) < min(last.values())


def test_rate_limit_is_retried_after_the_time_the_system_asked(make_company):
    company = make_company(systems=1)
    clock = FakeTime()
    engine = open_engine(company, clock)
    case = engine.open_case(engine.plan("user1@corp.example"))
    _fakes.add_faults(company.systems["sys0"], (429, 7.0), (503, None))
    result = engine.run_cases([case])[0]
    engine.close()
    assert result.status == CaseStatus.COMPLETE
    waits = [s for s in clock.sleeps if s]
    assert waits[0] == pytest.approx(7.0)  # Retry-After honoured, not a guess
    assert 0 < waits[1] < 7.0  # a 5xx backs off without a Retry-After
    assert result.actions[0]["attempts"] == 3


def test_auth_errors_are_not_retried_and_stop_the_system(make_company):
    company = make_company(systems=2)
    engine = open_engine(company)
    plan = engine.plan("user1@corp.example")
    _fakes.add_faults(company.systems["sys1"], (401, None))
    case = engine.open_case(plan)
    result = engine.run_cases([case])[0]
    engine.close()
    assert result.status == CaseStatus.INCOMPLETE
    sys1 = [a for a in result.actions if a["system"] == "sys1"]
    assert all(a["status"] == "failed" for a in sys1)
    assert sys1[0]["attempts"] == 1
    assert "AuthError" in result.detail
    assert company.changes("sys1") == []
    assert all(a["status"] == "verified" for a in result.actions if a["system"] == "sys0")


def test_an_authentication_hold_ends_and_the_connector_is_built_again(make_company):
    """A long-running process (``serve``, a worker) must not stay stopped for good after one expired credential:
    calls fail at once for ``limits.action_budget`` seconds, then the connector is built again (credentials read
    again) and the next case reaches the system."""
    company = make_company(systems=2)
    clock = FakeTime()
    engine = open_engine(company, clock)
    _fakes.add_faults(company.systems["sys1"], (401, None))  # the credential expired; rotated right after
    first = engine.run_cases([engine.open_case(engine.plan("user1@corp.example"))])[0]
    assert first.status == CaseStatus.INCOMPLETE and "AuthError" in first.detail
    held = engine.connector("sys1")

    second = engine.run_cases([engine.open_case(engine.plan("user2@corp.example"))])[0]
    assert second.status == CaseStatus.INCOMPLETE  # within the hold: failed at once, nothing sent
    assert "stopped after an authentication failure" in second.detail
    assert not [change for change in company.changes("sys1") if "user2" in change[0]]

    clock.now += engine.config.limits.action_budget
    third = engine.run_cases([engine.open_case(engine.plan("user3@corp.example"))])[0]
    assert engine.connector("sys1") is not held
    engine.close()
    assert third.status == CaseStatus.COMPLETE
    assert all(a["status"] == "verified" for a in third.actions if a["system"] == "sys1")


def test_missing_permission_is_named(make_company):
    company = make_company(systems=1)
    company.write_config(sys0={"forbid": ["remove_memberships"]})
    engine = open_engine(company)
    result = engine.revoke("user1@corp.example")
    engine.close()
    assert result.status == CaseStatus.INCOMPLETE
    assert "Accounts.remove_memberships" in result.detail


def test_a_lying_system_ends_the_case_incomplete_naming_the_account(make_company):
    company = make_company(systems=2)
    company.write_config(sys1={"lie": True})
    engine = open_engine(company, FakeTime())
    result = engine.revoke("user3@corp.example")
    engine.close()
    assert result.status == CaseStatus.INCOMPLETE
    assert "sys1 user3 disable_account: unverified" in result.detail


def test_unknown_person_is_an_error(make_company):
    company = make_company(systems=2)
    engine = open_engine(company)
    with pytest.raises(UnknownPerson, match="nobody@corp.example"):
        engine.plan("nobody@corp.example")
    engine.close()


def test_plan_writes_nothing(make_company):
    company = make_company(systems=2)
    engine = open_engine(company)
    plan = engine.plan("user1@corp.example")
    engine.close()
    assert len(plan.actions) == 2 * 3
    assert all(company.changes(s) == [] for s in company.systems)


def test_undo_restores_what_is_reversible(make_company):
    company = make_company(systems=2)
    before = company.state("sys0", "user2")
    engine = open_engine(company)
    result = engine.revoke("user2@corp.example")
    report = engine.undo(result.case_id)
    engine.close()
    after = company.state("sys0", "user2")
    assert after["enabled"] is True and after["groups"] == before["groups"]
    assert len(report["restored"]) == 4
    assert sorted(report["irreversible"]) == ["sys0 user2 revoke_sessions", "sys1 user2 revoke_sessions"]


def test_followups_are_scheduled_and_run_when_due(make_company, tmp_path):
    from datetime import timedelta

    from offboard.state._store import utcnow

    company = make_company(systems=1)
    policy = tmp_path / "staged.yaml"
    policy.write_text(
        "name: staged\nactions: [disable_account]\nlater:\n  - action: remove_memberships\n    after: 30d\n"
    )
    company.extra = {"policies": [str(policy)]}
    company.write_config()
    now = [utcnow()]
    engine = Engine.open(load_config(company.config_path), data_dir(), clock=lambda: now[0])
    engine.revoke("user1@corp.example", policy="staged")
    assert engine.run_due_followups() == []
    now[0] += timedelta(days=31)
    results = engine.run_due_followups()
    engine.close()
    assert [r.status for r in results] == [CaseStatus.COMPLETE]
    assert company.state("sys0", "user1")["groups"] == []


def test_every_step_is_recorded_as_an_event(make_company):
    company = make_company(systems=2)
    engine = open_engine(company)
    result = engine.revoke("user1@corp.example")
    events = list(engine.store.events(result.case_id))
    engine.close()
    types = [e["type"] for e in events]
    assert types[0] == "case_opened" and types[-1] == "case_closed"
    assert types.count("action") == len(result.actions)
    closed = json.loads(events[-1]["payload"])
    assert closed["status"] == "complete" and closed["counts"] == {"verified": 6}


def test_only_one_running_case_per_person(make_company):
    from offboard.errors import OffboardError

    company = make_company(systems=1)
    engine = open_engine(company)
    plan = engine.plan("user1@corp.example")
    engine.open_case(plan)
    with pytest.raises(OffboardError, match="already running"):
        engine.open_case(plan)
    other = engine.open_case(engine.plan("user2@corp.example"))  # other people are unaffected
    engine.close()
    assert other


def test_an_action_interrupted_after_its_write_is_read_back_not_applied_again(make_company):
    from offboard import Account, Action, ActionKind

    company = make_company(systems=1)
    engine = open_engine(company)
    case = engine.open_case(engine.plan("user1@corp.example"))
    row = next(r for r in engine.store.actions(case) if r["kind"] == "disable_account")
    account = Account.from_dict(json.loads(row["account"]))
    engine.connector("sys0").apply(Action(ActionKind.DISABLE_ACCOUNT, account))  # the write reached the system,
    engine.store.update_action(row["id"], status="applying")  # then the process died before recording it
    [result] = engine.resume()
    engine.close()
    assert result.ok
    assert company.changes("sys0").count(("id-user1", "disable_account")) == 1
    disabled = next(a for a in result.actions if a["kind"] == "disable_account")
    assert disabled["status"] == "verified"


def test_with_lanes_the_system_rate_counts_requests_not_calls(tmp_path):
    """A connector that makes several requests per call is held to its system rate per request."""
    from offboard import Account, CheckResult, Connector, Person, Receipt, Verification, hookimpl, plugins
    from offboard.config._config import Config, ConnectorConfig

    class Chatty(Connector):
        name = "chatty_lanes"
        rate_limits = {"api": (1000.0, 1000)}

        def check(self):
            return CheckResult(True)

        def discover(self, person):
            return [Account(self.instance, "a1", person.id)]

        def disable_account(self, action):
            for _ in range(3):  # e.g. read, write, read back
                self.throttle("api")
            return Receipt(action, True)

        def verify(self, action, receipt=None):
            self.throttle("api")
            return Verification(action, True)

    class Plugin:
        @hookimpl
        def register_connectors(self, register):
            register(Chatty)

    pm = plugins.get_plugin_manager()
    plugin = Plugin()
    pm.register(plugin)
    try:
        policy = tmp_path / "p.yaml"
        policy.write_text("name: p\nactions: [disable_account]\n")
        config = Config(
            connectors={"c": ConnectorConfig(type="chatty_lanes", rate=1.0, burst=1)}, policies=[str(policy)]
        )
        engine = Engine.open(config, tmp_path)
        clock = FakeTime()
        engine.sleep, engine.monotonic = clock.sleep, clock.monotonic
        result = engine.revoke(Person("x@corp.example", "x@corp.example"), policy="p")
        engine.close()
    finally:
        pm.unregister(plugin)
    assert result.ok
    # discovery is a call without lanes of its own (no throttle); the 4 requests after it take 1 s each
    assert sum(clock.sleeps) >= 3.0


def test_revoke_turned_down_by_confirm_opens_nothing(make_company):
    company = make_company(systems=2)
    engine = open_engine(company)
    seen = []
    try:
        assert engine.revoke("user1@corp.example", confirm=lambda plan: seen.append(plan) or False) is None
        assert seen[0].person.id == "user1@corp.example" and seen[0].actions
        assert engine.latest_cases() == [] and company.changes("sys0") == []
    finally:
        engine.close()


def test_the_checklist_is_drawn_up_once_per_case(make_company, monkeypatch):
    company = make_company(systems=1)
    engine = open_engine(company)
    calls = []
    original = engine.checklist
    monkeypatch.setattr(engine, "checklist", lambda *a: calls.append(a) or original(*a))
    try:
        result = engine.revoke("user1@corp.example")
        assert len(calls) == 1 and result.checklist["total"] == len(original(*calls[0]))
        assert engine.find_case(result.case_id[:-2])["id"] == result.case_id
    finally:
        engine.close()


def test_distributed_execution_is_set_up_by_open(make_company):
    company = make_company(systems=1)
    company.extra = {"execution": "distributed"}  # with the default SQLite store: refused at once
    with pytest.raises(ConfigError, match="execution: distributed needs `store:` to be a PostgreSQL URL"):
        Engine.open(load_config(company.write_config()), data_dir())
