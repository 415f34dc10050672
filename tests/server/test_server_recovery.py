"""Never lose an event: accepted events survive a kill and are processed after restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import sqlalchemy as sa

from ._support import Clock, configure, event, new_secret, sign, start, stop


def test_accepted_but_unprocessed_events_are_processed_after_restart(make_company, monkeypatch):
    company = make_company(systems=2)
    secret = new_secret()
    configure(company, secret, monkeypatch)
    clock = Clock()
    first = start(company, secret, clock, process=False)  # the worker never runs: as if killed after the 202
    assert first.post(event(id="evt-a")).status_code == 202
    assert first.post(event("user2@corp.example", id="evt-b")).status_code == 202
    stop(first)
    second = start(company, secret, clock, process=True)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and {e["status"] for e in second.events()} != {"done"}:
            time.sleep(0.05)
        assert [e["status"] for e in second.events()] == ["done", "done"]
        assert sorted(c["person_id"] for c in second.cases()) == ["user1@corp.example", "user2@corp.example"]
        assert all(c["status"] == "complete" for c in second.cases())
    finally:
        stop(second)


def test_the_background_worker_processes_without_being_asked(make_company, monkeypatch):
    company = make_company(systems=1)
    secret = new_secret()
    configure(company, secret, monkeypatch, server={"poll_seconds": 0.2})
    srv = start(company, secret, Clock(), process=True)
    try:
        assert srv.post(event(id="evt-bg")).status_code == 202
        deadline = time.time() + 20
        while time.time() < deadline and not srv.cases():
            time.sleep(0.05)
        assert len(srv.cases()) == 1
        assert srv.client.get("/ready").json()["status"] == "ready"
    finally:
        stop(srv)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(config, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "offboard", "--config", str(config), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )


def _wait_ready(proc: subprocess.Popen, port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"offboard serve exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("offboard serve did not become ready")


def test_a_server_killed_right_after_the_202_processes_the_event_after_restart(make_company, monkeypatch, home):
    company = make_company(systems=2)
    secret = new_secret()
    # slow systems: the kill lands before the case can finish
    configure(company, secret, monkeypatch, systems={s: {"latency_ms": 400} for s in company.systems})
    port = _free_port()
    proc = _serve(company.config_path, port)
    try:
        _wait_ready(proc, port)
        body = json.dumps(event(id="evt-kill")).encode()
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/events",
            content=body,
            headers={"content-type": "application/json", **sign(secret, body)},
        )
        assert response.status_code == 202
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    db = sa.create_engine(f"sqlite:///{home / 'offboard.db'}")
    with db.connect() as conn:
        status = conn.execute(sa.text("select status from hr_events where key = 'workday:evt-kill'")).scalar()
        cases = conn.execute(sa.text("select count(*) from cases where status = 'complete'")).scalar()
    assert status in ("accepted", "opened") and cases == 0  # stored, not yet done
    proc = _serve(company.config_path, port)
    try:
        _wait_ready(proc, port)
        deadline = time.time() + 30
        while time.time() < deadline:
            with db.connect() as conn:
                status = conn.execute(sa.text("select status from hr_events where key = 'workday:evt-kill'")).scalar()
            if status == "done":
                break
            time.sleep(0.1)
        with db.connect() as conn:
            rows = conn.execute(sa.text("select status from cases where source_event = 'workday:evt-kill'")).all()
        assert status == "done" and [r[0] for r in rows] == ["complete"]
        for system in company.systems:
            assert company.state(system, "user1")["enabled"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        db.dispose()
