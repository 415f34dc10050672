"""Case leases: a case a live process is running is never taken over by `resume`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from offboard.state._store import Store, new_id, utcnow


def _offboard(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "OFFBOARD_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "offboard", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _audit_types(home: Path) -> list[str]:
    lines = (home / "audit" / "entries.jsonl").read_text().splitlines()
    return [json.loads(line)["type"] for line in lines]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_resume_leaves_alone_a_case_that_a_live_process_is_running(make_company, home, request, backend):
    company = make_company(systems=3, people=3)
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    if url:
        company.extra["store"] = url
    # slow systems: the revoke must still be running when `resume` (a new process, slow to start on a
    # loaded machine) looks at the case; at 300 ms a call it could finish first, and then nothing is "left alone"
    company.write_config(**{s: {"latency_ms": 1500} for s in company.systems})
    config = str(company.config_path)
    revoke = _offboard("--config", config, "revoke", "user1@corp.example", "--yes", "--json", home=home)
    deadline = time.time() + 60
    while time.time() < deadline and not any(company.changes(s) for s in company.systems):
        time.sleep(0.05)
    assert revoke.poll() is None, "the revoke should still be running"

    resumed = _offboard("--config", config, "resume", "--json", home=home)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert json.loads(out) == []  # nothing taken over
    assert "left alone: case case-" in err and f"owned by process {revoke.pid} on " in err

    out, err = revoke.communicate(timeout=120)
    assert revoke.returncode == 0, err
    case_id = json.loads(out)["case"]
    for system in company.systems:
        changes = company.changes(system)
        assert len(changes) == len(set(changes)) == 3, f"{system} got a write twice: {changes}"
    types = _audit_types(home)
    assert types.count("case_closed") == 1 and "recovery" not in types
    store = Store.open(url, home)
    try:
        assert store.case(case_id)["status"] == "complete"
        assert store.leases.holders([case_id]) == {}  # released when the case closed
    finally:
        store.close()


def _case(store: Store) -> str:
    case_id = new_id()
    now = utcnow()
    row = dict(
        id=case_id,
        person_id=case_id,
        person="{}",
        status="running",
        trigger="cli",
        policy="default",
        created_at=now,
        updated_at=now,
    )
    store.insert_case(row, [], [])
    return case_id


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_lease_is_taken_only_when_free_expired_or_its_holder_is_a_dead_local_process(tmp_path, request, backend):
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    store = Store.open(url, tmp_path)
    try:
        case_id = _case(store)
        leases = store.leases
        assert leases.acquire(case_id, "a", "host-a", 11, ttl=30) is None
        assert leases.acquire(case_id, "a", "host-a", 11, ttl=30) is None  # already ours: renewed
        holder = leases.acquire(case_id, "b", "host-b", 22, ttl=30)
        assert holder is not None and holder["owner"] == "a" and holder["host"] == "host-a" and holder["pid"] == 11
        # A holder its taker knows to be dead (a killed process on the same host) loses it at once.
        assert leases.acquire(case_id, "b", "host-b", 22, ttl=30, dead=lambda row: row["pid"] == 11) is None
        assert leases.holder(case_id)["owner"] == "b"
        assert leases.renew("b", ttl=-1) == {case_id}  # its heartbeat stops: expired
        assert leases.acquire(case_id, "c", "host-c", 33, ttl=30) is None
        assert leases.renew("b", ttl=30) == set()  # b learns it lost the case
        leases.release(case_id, owner="b")  # not b's any more: nothing happens
        assert leases.holder(case_id)["owner"] == "c"
        leases.release(case_id)
        assert leases.holder(case_id) is None
        assert leases.holders([case_id]) == {}
    finally:
        store.close()


def test_a_workers_clean_up_leaves_alone_a_case_whose_owner_is_about_to_close_it(make_company, home):
    from offboard.config._config import load_config
    from offboard.engine._engine import Engine

    company = make_company(systems=2, people=2)
    home.mkdir(parents=True, exist_ok=True)
    owner = Engine.open(load_config(company.config_path), home)
    janitor = Engine.open(load_config(company.config_path), home)  # another engine: its own lease owner
    try:
        case_id = owner.open_case(owner.plan("user1@corp.example"))
        for row in owner.store.actions(case_id):  # the work is done; the owner has not closed the case yet
            owner.store.update_action(row["id"], status="verified", responded_at=utcnow())
        assert janitor.close_stragglers() == []  # before leases: claimed and closed here, then again by the owner
        assert owner.store.case(case_id)["status"] == "running"
        owner.close_case(case_id)
        assert janitor.close_stragglers() == []
    finally:
        janitor.close()
        owner.close()
    assert _audit_types(home).count("case_closed") == 1


def test_on_postgresql_a_machine_whose_clock_runs_fast_cannot_take_a_live_lease(tmp_path, pg_url, monkeypatch):
    """Machines' clocks differ. On PostgreSQL every lease time is the database's, so a process on a host whose
    clock is ten minutes ahead still sees another machine's 30-second lease as live, and takes it once it
    really has expired."""
    import offboard.state._leases as module

    store = Store.open(pg_url, tmp_path)
    try:
        case_id = _case(store)
        assert store.leases.acquire(case_id, "a", "host-a", 11, ttl=30) is None

        class Ahead(datetime):
            @classmethod
            def now(cls, tz=None):  # this host's clock, ten minutes fast
                return datetime.now(tz) + timedelta(minutes=10)

        monkeypatch.setattr(module, "datetime", Ahead)
        holder = store.leases.acquire(case_id, "b", "host-b", 22, ttl=30)
        assert holder is not None and holder["owner"] == "a"
        assert store.leases.renew("a", ttl=0.5) == {case_id}
        time.sleep(1.0)
        assert store.leases.acquire(case_id, "b", "host-b", 22, ttl=30) is None
        assert store.leases.holder(case_id)["owner"] == "b"
    finally:
        store.close()
