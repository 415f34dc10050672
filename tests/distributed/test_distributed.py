"""Scale-out on the real PostgreSQL of this machine, with several worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from offboard import CaseStatus
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine

from .. import _fakes

pytestmark = pytest.mark.postgres


def _distributed(company, pg_url, **settings):
    company.extra = {"store": pg_url, "execution": "distributed"}
    return company.write_config(**settings)


def _worker(config, home, *extra):
    env = {**os.environ, "OFFBOARD_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "offboard", "--config", str(config), "worker", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(*procs):
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _open_all(config_path, people):
    engine = Engine.open(load_config(config_path), data_dir())
    engine.dispatcher.poll = 0.1
    case_ids = [engine.open_case(engine.plan(f"user{i}@corp.example")) for i in range(people)]
    return engine, case_ids


def test_several_workers_finish_every_case_once(make_company, pg_url, home):
    people = 40
    company = make_company(systems=3, people=people)
    config = _distributed(company, pg_url, **{s: {"latency_ms": 5} for s in company.systems})
    engine, case_ids = _open_all(config, people)  # jobs are queued with the cases; no worker yet
    workers = [_worker(config, home, "--concurrency", "4") for _ in range(3)]
    try:
        results = engine.run_cases(case_ids)
    finally:
        _stop(*workers)
        engine.close()
    assert [r.status for r in results] == [CaseStatus.COMPLETE] * people
    for system in company.systems:
        changes = company.changes(system)
        assert len(changes) == people * 3 and len(set(changes)) == len(changes)


def test_workers_cut_everyones_access_before_any_cleanup(make_company, pg_url, home):
    """Critical-first across cases: every queued critical part (sessions, disable) is taken before any cleanup
    part (memberships), and each account's cleanup still comes after its own critical part."""
    people = 8
    company = make_company(systems=1, people=people)
    config = _distributed(company, pg_url, sys0={"latency_ms": 5})
    engine, case_ids = _open_all(config, people)  # every case's jobs are queued before the worker starts
    worker = _worker(config, home, "--concurrency", "1")
    try:
        results = engine.run_cases(case_ids)
    finally:
        _stop(worker)
        engine.close()
    assert [r.status for r in results] == [CaseStatus.COMPLETE] * people
    kinds = [kind for _, kind in company.changes("sys0")]
    assert kinds.count("remove_memberships") == people and kinds.count("disable_account") == people
    last_cut = max(i for i, k in enumerate(kinds) if k in ("revoke_sessions", "disable_account"))
    assert last_cut < kinds.index("remove_memberships"), kinds


def test_a_worker_killed_mid_job_loses_nothing(make_company, pg_url, home):
    people = 6
    company = make_company(systems=2, people=people)
    config = _distributed(company, pg_url, **{s: {"latency_ms": 400} for s in company.systems})
    engine, case_ids = _open_all(config, people)
    victim = _worker(config, home, "--concurrency", "4", "--heartbeat", "1", "--stalled-after", "3")
    survivor = None
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(company.changes(s) for s in company.systems):
            time.sleep(0.05)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        done = sum(len(company.changes(s)) for s in company.systems)
        assert done < people * 2 * 3, "the kill should land mid-run"
        survivor = _worker(config, home, "--concurrency", "4", "--heartbeat", "1", "--stalled-after", "3")
        results = engine.run_cases(case_ids)
    finally:
        _stop(*(p for p in (victim, survivor) if p))
        engine.close()
    assert all(r.status == CaseStatus.COMPLETE for r in results), [r.detail for r in results]
    for system in company.systems:
        changes = company.changes(system)
        assert len(changes) == people * 3 and len(set(changes)) == len(changes), Counter(changes).most_common(3)


def test_the_rate_limit_holds_across_all_workers(make_company, pg_url, home):
    people, rate = 30, 20.0
    company = make_company(systems=1, people=people)
    company.extra = {"store": pg_url, "execution": "distributed"}
    raw = {
        "plugins": [str(_fakes.__file__)],
        "store": pg_url,
        "execution": "distributed",
        "connectors": {
            "sys0": {"type": "testsys", "rate": rate, "burst": 2, "settings": {"path": str(company.systems["sys0"])}}
        },
    }
    config = company.root / "rated.yaml"
    config.write_text(yaml.safe_dump(raw))
    engine, case_ids = _open_all(config, people)
    workers = [_worker(config, home, "--concurrency", "6") for _ in range(3)]
    try:
        results = engine.run_cases(case_ids)
    finally:
        _stop(*workers)
        engine.close()
    assert all(r.ok for r in results)
    starts = sorted(start for op, start, _ in _fakes.calls(company.systems["sys0"]) if op != "discover")
    # GCRA with burst 2: in any window of w seconds at most rate*w + 2 calls start
    worst = max(sum(1 for t in starts[i:] if t < s + 3.0) for i, s in enumerate(starts))
    # tokens are issued at the shared rate; the calls' own start times carry scheduling jitter on 2 busy cores
    assert worst <= rate * 3.5 + 2, f"{worst} calls started within 3 seconds"
    average = (len(starts) - 1) / (starts[-1] - starts[0])
    assert average <= rate * 1.02, f"{average:.1f} calls per second on average"
    assert len(starts) >= people * 3 * 2  # applies and read-backs all went through the shared bucket


def test_500_people_in_five_sandbox_systems_with_a_worker_killed(pg_url, home, tmp_path):
    """The acceptance run: real connectors, three workers, one SIGKILLed mid-run, a shared rate limit."""
    from offboard.sandbox import Sandbox

    people, slack_rate = 500, 40.0
    five = ("entra", "google_workspace", "slack", "github", "scim")
    with Sandbox(people=people, seed=11, knobs={"rate_limits": False}, systems=five) as sandbox:
        raw = sandbox.config()
        raw.update(store=pg_url, execution="distributed", policy_by_type={}, default_policy="suspend-only")
        for _name, connector in raw["connectors"].items():  # the simulators' limits are off: only ours bind
            connector["rate"], connector["rates"], connector["concurrency"] = 400.0, {"*": 1000.0}, 16
        raw["connectors"]["slack"]["rate"] = slack_rate
        raw["connectors"]["slack"]["burst"] = 1
        config = tmp_path / "offboard.yaml"
        config.write_text(yaml.safe_dump(raw))
        engine = Engine.open(load_config(config), data_dir())
        engine.dispatcher.poll = 0.5
        plans = [engine.plan(p) for p in sandbox.company.people[:people]]
        case_ids = [engine.open_case(plan) for plan in plans]
        extra = ("--concurrency", "8", "--heartbeat", "1", "--stalled-after", "3")
        workers = [_worker(config, home, *extra) for _ in range(3)]
        try:
            entra = sandbox.sim("entra")
            deadline = time.time() + 120
            while time.time() < deadline and len(entra.log.entries(method="PATCH")) < 50:
                time.sleep(0.1)
            os.kill(workers[0].pid, signal.SIGKILL)
            results = engine.run_cases(case_ids)
        finally:
            _stop(*workers)
            engine.close()
        assert [r.status for r in results] == [CaseStatus.COMPLETE] * people, [r.detail for r in results if not r.ok][
            :3
        ]
        # each disable reached Entra once per person, even with a worker killed mid-job
        patches = Counter(e.path for e in entra.log.entries(method="PATCH") if b"accountEnabled" in e.body)
        assert len(patches) == sum(1 for p in plans if any(a.account.system == "entra" for a in p.actions))
        assert max(patches.values()) == 1
        slack_calls = sorted(
            e.time for e in sandbox.sim("slack").log.entries() if e.method in ("GET", "POST", "PATCH", "DELETE")
        )
        # Tokens are issued at the shared rate; arrivals carry scheduling jitter on a busy 2-core machine, so
        # count over 5-second windows and allow half a second of it (one bucket per worker would double the count).
        worst = max(sum(1 for t in slack_calls[i : i + 400] if t < s + 5.0) for i, s in enumerate(slack_calls))
        assert worst <= slack_rate * 5.5 + 1, f"{worst} Slack requests within 5 seconds across all workers"
        average = (len(slack_calls) - 1) / (slack_calls[-1] - slack_calls[0])
        assert average <= slack_rate * 1.02, f"Slack saw {average:.1f} requests/s on average"
    verify = subprocess.run(
        [sys.executable, "-m", "offboard", "audit", "verify"],
        env={**os.environ, "OFFBOARD_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_shared_bucket_paces_calls_at_its_rate(pg_url):
    from offboard.engine._distributed import SharedBucket
    from offboard.state._store import Store

    store = Store(pg_url)
    store.migrate()
    bucket = SharedBucket(store, "slack", rate=50.0, burst=1)
    started = time.monotonic()
    for _ in range(26):
        bucket.acquire()
    elapsed = time.monotonic() - started
    store.close()
    assert elapsed >= 25 / 50 * 0.95  # 25 intervals of 20 ms after the first token, never faster
    assert bucket.waited > 0
