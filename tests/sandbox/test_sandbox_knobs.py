"""Knobs: latency, injected faults (5xx, resets, timeouts, 429 storms, lies), reproducibility, the request log."""

from __future__ import annotations

import time

import httpx
import pytest

from offboard.sandbox import Knobs, Limit, Sandbox
from offboard.sandbox._knobs import FaultPlan, Limiter


@pytest.fixture(scope="module")
def slack(sandbox, secret):
    s = sandbox.config()["connectors"]["slack"]["settings"]
    client = httpx.Client(
        base_url=s["api_url"], headers={"Authorization": f"Bearer {secret(s['token'])}"}, trust_env=False, timeout=5
    )
    return client, sandbox.sim("slack"), sandbox.company.people[0].email


def _lookup(client, email):
    return client.post("users.lookupByEmail", data={"email": email})


def test_fault_draws_are_reproducible_from_the_seed():
    knobs = Knobs(error_rate=0.2, storm_rate=0.05, lie_rate=0.3, reset_rate=0.05)
    a = [FaultPlan(knobs, 42).draw(True) for _ in range(1)]
    plan_a, plan_b, plan_c = FaultPlan(knobs, 42), FaultPlan(knobs, 42), FaultPlan(knobs, 43)
    seq_a = [plan_a.draw(True) for _ in range(300)]
    assert seq_a == [plan_b.draw(True) for _ in range(300)]
    assert seq_a != [plan_c.draw(True) for _ in range(300)]
    assert {"error", "storm", "lie", "reset"} <= set(seq_a) and a


def test_limiter_retry_after_and_window_scale():
    knobs = Knobs()
    lim = Limiter({"x": Limit(60, 60, 2)}, knobs)
    assert lim.take("x", now=0.0) == 0 and lim.take("x", now=0.0) == 0
    assert lim.take("x", now=0.0) == pytest.approx(1.0)
    assert lim.take("x", now=1.0) == 0
    knobs.window_scale = 0.01
    assert lim.take("x", now=1.0) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown sandbox knob"):
        knobs.update(latency=5)


def test_latency(slack):
    client, sim, email = slack
    with sim.knobs_set(latency_ms=120):
        t = time.monotonic()
        assert _lookup(client, email).json()["ok"]
        assert time.monotonic() - t >= 0.12


def test_5xx_faults(slack):
    client, sim, email = slack
    with sim.knobs_set(error_rate=1.0):
        r = _lookup(client, email)
    assert r.status_code in (500, 503) and r.json()["ok"] is False
    assert sim.log.entries()[-1].fault == "error"


def test_connection_reset(slack):
    client, sim, email = slack
    with sim.knobs_set(reset_rate=1.0):
        with pytest.raises(httpx.TransportError):
            _lookup(client, email)
    assert sim.log.entries()[-1].fault == "reset"
    assert _lookup(client, email).json()["ok"]


def test_timeout(slack):
    client, sim, email = slack
    with sim.knobs_set(timeout_rate=1.0, timeout_seconds=1.0):
        with pytest.raises(httpx.TimeoutException):
            client.post("users.lookupByEmail", data={"email": email}, timeout=0.3)
    time.sleep(0.8)


def test_429_storm(slack):
    client, sim, email = slack
    with sim.knobs_set(storm_rate=1.0, storm_length=3):
        first = _lookup(client, email)
    rest = [_lookup(client, email).status_code for _ in range(3)]
    assert (
        first.status_code == 429 and first.json()["error"] == "ratelimited" and int(first.headers["Retry-After"]) >= 1
    )
    assert rest == [429, 429, 200]


def test_a_storm_ends_when_its_retry_after_has_passed():
    """The Retry-After of a storm's answers is the time it has left: a client that waits as told is served
    (RFC 9110 §10.2.3), even though fewer than ``storm_length`` answers were throttled."""
    now = [100.0]
    plan = FaultPlan(Knobs(storm_rate=1.0, storm_length=20), 7, clock=lambda: now[0])
    assert plan.draw(False) == "storm"
    plan.knobs.storm_rate = 0.0
    told = plan.storm_wait()
    assert 1.0 <= told <= 5.0 and [plan.draw(False) for _ in range(3)] == ["storm"] * 3
    now[0] += told / 2
    assert plan.draw(False) == "storm" and plan.storm_wait() == pytest.approx(max(told / 2, 1.0))
    now[0] += told / 2 + 0.01
    assert plan.draw(False) == "" and plan.storm_left == 0


def test_forced_status_counts_down(slack):
    client, sim, email = slack
    with sim.force(503, count=2):
        codes = [_lookup(client, email).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_request_log(slack):
    client, sim, email = slack
    before = sim.log.total
    _lookup(client, email)
    entry = sim.log.entries(contains="lookupByEmail")[-1]
    assert sim.log.total == before + 1 and entry.method == "POST" and entry.status == 200 and entry.body
    assert email.split("@")[0] in entry.body.decode().replace("%40", "@")


def test_sandbox_refuses_unknown_systems_and_is_unstarted_until_started():
    with pytest.raises(ValueError, match="unknown sandbox system"):
        Sandbox(systems=("ldap",))
    sb = Sandbox(people=2, systems=("slack",))
    with pytest.raises(RuntimeError, match="not started"):
        sb.url("slack")
    with pytest.raises(KeyError, match="unknown sandbox system"):
        sb.sim("entra")


def test_secrets_are_files_not_inline(sandbox):
    config = sandbox.config()
    text = repr(config)
    for name, sim in ((n, sandbox.sim(n)) for n in sandbox.systems):
        for attr in ("token", "client_secret"):
            value = getattr(sim, attr, None)
            if isinstance(value, str):
                assert value not in text, f"{name} {attr} is inline in the config"
    assert config["connectors"]["slack"]["settings"]["token"].startswith("file:")
