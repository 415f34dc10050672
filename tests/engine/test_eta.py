"""The ETA of a bulk run: calls counted as the engine makes them, the binding limit, and a run that keeps to it."""

from __future__ import annotations

import math
from collections import Counter

import yaml

from offboard import ActionKind, Connector
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine
from offboard.engine._eta import calls_of, format_seconds, reads_of

from .test_engine_run import FakeTime

PEOPLE = 10


def _company(make_company, rate: float = 5.0):
    company = make_company(systems=1, people=PEOPLE)
    data = yaml.safe_load(company.config_path.read_text())
    data["connectors"]["sys0"].update(rate=rate, burst=1, concurrency=1)
    company.config_path.write_text(yaml.safe_dump(data))
    return company


def test_the_eta_counts_write_and_read_back_per_action_and_the_closing_check(make_company):
    company = _company(make_company)
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        plans = [engine.plan(f"user{i}@corp.example", bulk=True) for i in range(PEOPLE)]
        eta = engine.estimate(plans, latency=0.0)
    finally:
        engine.close()
    (system,) = eta.systems
    # default policy on the test system: revoke_sessions, disable_account, remove_memberships
    assert (system.actions, system.critical_actions) == (3 * PEOPLE, 2 * PEOPLE)
    assert system.critical_calls == 2 * 2 * PEOPLE
    assert system.calls == 3 * 2 * PEOPLE + 2 * PEOPLE  # and the residual read-backs of disable and memberships
    assert (system.binding, system.limit) == ("system", "5/s, burst 1")
    assert system.access_cut == (4 * PEOPLE - 1) / 5.0
    assert system.cleanup_end == (6 * PEOPLE - 1) / 5.0  # the system's own actions
    # the closing checks' reads come when each person's slowest system is through: the batch's end counts them
    assert system.checks_end == eta.cleanup_end == (8 * PEOPLE - 1) / 5.0
    assert eta.to_dict()["systems"][0]["checks_end_seconds"] == math.ceil((8 * PEOPLE - 1) / 5.0)
    assert eta.to_dict()["access_cut_seconds"] == 8  # whole seconds, rounded up: audit entries hold no floats
    assert any("access cut for everyone in 7.8 s" in line for line in eta.lines())


def test_a_bulk_run_cuts_access_when_the_eta_said(make_company):
    """With the engine's clock replaced (waits are exact), the measured access cut is the ETA's."""
    company = _company(make_company)
    engine = Engine.open(load_config(company.config_path), data_dir())
    clock = FakeTime()
    engine.sleep, engine.monotonic = clock.sleep, clock.monotonic
    try:
        plans = [engine.plan(f"user{i}@corp.example", bulk=True) for i in range(PEOPLE)]
        eta = engine.estimate(plans, latency=0.0)
        results = engine.run_cases([engine.open_case(plan) for plan in plans])
        measured = engine.last_timing["sys0"]
    finally:
        engine.close()
    assert all(r.ok for r in results)
    (system,) = eta.systems
    assert measured.access_cut is not None and measured.cleanup_end is not None
    assert abs(measured.access_cut - system.access_cut) <= 0.15 * system.access_cut
    assert measured.cleanup_end >= measured.access_cut


def test_lane_connectors_count_the_requests_they_declare():
    class Laned(Connector):
        name = "laned_eta"
        rate_limits = {"read": (5.0, 5), "write": (1.0, 1)}
        calls = {ActionKind.DISABLE_ACCOUNT: {"read": 2, "write": 1}}
        reads = {ActionKind.DISABLE_ACCOUNT: {"read": 1}}

    assert calls_of(Laned, ActionKind.DISABLE_ACCOUNT) == {"read": 2, "write": 1, "": 3}
    assert reads_of(Laned, ActionKind.DISABLE_ACCOUNT) == {"read": 1, "": 1}
    assert calls_of(Laned, ActionKind.REVOKE_SESSIONS) == {"read": 2.0, "": 2.0}  # undeclared: write and read-back


def test_durations_read_as_people_say_them():
    assert [format_seconds(s) for s in (4.25, 42, 725, 12_000)] == ["4.2 s", "42 s", "12 min 5 s", "3 h 20 min"]


def test_the_closing_check_counts_what_a_connectors_own_residual_sends(monkeypatch):
    """Per account at a case's close: the read-back of each residual kind, and ``residual_calls``."""
    from types import SimpleNamespace

    from offboard.engine import _connectors, _eta

    class Laned(Connector):
        name = "laned_residual"
        rate_limits = {"queries": (40.0, 40)}
        reads = {ActionKind.DISABLE_ACCOUNT: {"queries": 1}}
        residual_calls = {"queries": 4}

        def disable_account(self, action):  # capable of the kind the policy removes
            raise NotImplementedError

    monkeypatch.setattr(_connectors, "connector_class", lambda engine, system: Laned)
    engine = SimpleNamespace(config=SimpleNamespace(connectors={"g": SimpleNamespace(type="laned_residual")}))
    policy = SimpleNamespace(name="default", actions_for=lambda system, kind: ([ActionKind.DISABLE_ACCOUNT], None))

    def account(n):
        return SimpleNamespace(system="g", ref=("g", n))

    plan = SimpleNamespace(
        policy=policy, actions=[SimpleNamespace(account=account(n)) for n in ("a", "a", "b")]
    )  # two accounts
    every = {"g": Counter()}
    _eta._residual(engine, plan, every, {})
    assert every["g"] == Counter({"queries": 2 * (1 + 4), "": 2 * (1 + 4)})


def _phases_estimate(monkeypatch, membership_calls):
    """The ETA of 101 people's session revocation (one System Log read each, 1/s) and memberships."""
    from types import SimpleNamespace

    from offboard.engine import _connectors, _eta

    class Laned(Connector):
        name = "laned_phases"
        rate_limits = {"logs": (1.0, 1), "other": (10.0, 10)}
        calls = {ActionKind.REVOKE_SESSIONS: {"logs": 1}, ActionKind.REMOVE_MEMBERSHIPS: membership_calls}

    monkeypatch.setattr(_connectors, "connector_class", lambda engine, system: Laned)
    cfg = SimpleNamespace(type="laned_phases", concurrency=4, rate=None, burst=None, rates={})
    engine = SimpleNamespace(config=SimpleNamespace(connectors={"o": cfg}, cases=SimpleNamespace(check_on_close=False)))
    account = SimpleNamespace(system="o")
    kinds = [ActionKind.REVOKE_SESSIONS, ActionKind.REMOVE_MEMBERSHIPS]
    plans = [
        SimpleNamespace(actions=[SimpleNamespace(account=account, kind=k) for k in kinds], covered=())
        for _ in range(101)
    ]
    (system,) = _eta.estimate(engine, plans, latency=0.0).systems
    return system


def test_a_systems_cleanup_is_counted_from_its_access_cut(monkeypatch):
    """Critical-first: cleanup that takes a critical lane waits for the access cut, so its calls on other
    lanes do not run beside a critical phase that one slow lane binds."""
    system = _phases_estimate(monkeypatch, {"other": 5, "logs": 1})
    assert system.access_cut == 100.0  # 101 log reads at 1/s, burst 1
    # the 505 calls on "other" (49.5 s) start when access is cut; the log's 202 reads take 201 s in all
    assert system.cleanup_end == 201.0
    assert _phases_estimate(monkeypatch, {"other": 50, "logs": 1}).cleanup_end == 100.0 + (5050 - 10) / 10.0


def test_cleanup_on_lanes_the_critical_phase_leaves_idle_is_counted_beside_it(monkeypatch):
    """Okta: sessions read back through the System Log at 50 a minute, memberships at 600 a minute on lanes
    of their own; the memberships run beside the critical phase (``_schedule.early_cleanup``)."""
    system = _phases_estimate(monkeypatch, {"other": 5})
    assert system.access_cut == 100.0
    assert system.cleanup_end == 100.0  # the 505 membership calls fit beside the 101 log reads
