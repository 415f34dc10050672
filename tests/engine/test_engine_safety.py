"""Crash safety, protected accounts, and secrets that never leak."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboard import Account, Person
from offboard.config._config import Config, ConnectorConfig
from offboard.config._policy import Policy
from offboard.engine._engine import Engine
from offboard.state._store import Store

from .. import _fakes


def _offboard(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "OFFBOARD_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "offboard", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_sigkill_mid_run_then_resume_applies_each_action_exactly_once(make_company, home):
    company = make_company(systems=3, people=3)
    company.write_config(**{s: {"latency_ms": 250} for s in company.systems})
    proc = _offboard("--config", str(company.config_path), "revoke", "user1@corp.example", "--yes", home=home)
    deadline = time.time() + 60
    while time.time() < deadline and not any(company.changes(s) for s in company.systems):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sum(len(company.changes(s)) for s in company.systems)
    assert 0 < done_before < 9, "the kill should land mid-run"

    resumed = _offboard("--config", str(company.config_path), "resume", "--json", home=home)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    [case] = json.loads(out)
    assert case["status"] == "complete"
    for system in company.systems:
        changes = company.changes(system)
        assert sorted(changes) == sorted({(a, k) for a, k in changes}), f"{system} got a write twice: {changes}"
        assert len(changes) == 3
    events = [e["type"] for e in Store.open(None, home).events()]
    assert "recovery" in events


def _account(draw_name: str, admin: bool, system: str = "sys0") -> Account:
    return Account(system, f"id-{draw_name}", draw_name, f"{draw_name}@corp.example", admin=admin)


names = st.from_regex(r"[a-z][a-z0-9.\-]{0,10}", fullmatch=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    accounts=st.lists(
        st.tuples(names, st.booleans(), st.sampled_from(["sys0", "sys1"])),
        min_size=1,
        max_size=12,
        unique_by=lambda t: (t[0], t[2]),
    ),
    listed=st.lists(names, max_size=4),
    patterns=st.lists(st.sampled_from(["svc-*", "admin*", "*.bot", "break*", "a*"]), max_size=3),
    config_protected=st.lists(names, max_size=3),
    admins_protected=st.booleans(),
    kinds=st.lists(
        st.sampled_from(["disable_account", "revoke_sessions", "remove_memberships"]), min_size=1, unique=True
    ),
)
def test_no_protected_account_ever_appears_in_a_plan(
    tmp_path_factory, accounts, listed, patterns, config_protected, admins_protected, kinds
):
    root = tmp_path_factory.mktemp("prop")
    config = Config(
        connectors={
            s: ConnectorConfig(type="testsys", settings={"path": str(root / f"{s}.db")}) for s in ("sys0", "sys1")
        },
        protected=config_protected,
    )
    from offboard import plugins

    plugins.get_plugin_manager().register(_fakes) if not plugins.get_plugin_manager().is_registered(_fakes) else None
    policy = Policy(
        name="p", actions=kinds, protected={"names": listed, "patterns": patterns, "admins": admins_protected}
    )
    engine = Engine(config, Store.open(None, root), root)
    try:
        accts = [_account(n, a, s) for n, a, s in accounts]
        plan = engine.plan_for(Person("x@corp.example", "x@corp.example"), policy, accts)
    finally:
        engine.close()
    import fnmatch

    def is_protected(a: Account) -> bool:
        keys = {a.name.lower(), a.email.lower(), a.id.lower()}
        return (
            (admins_protected and a.admin)
            or bool(keys & {n.lower() for n in listed + config_protected})
            or any(fnmatch.fnmatchcase(k, p) for k in keys for p in patterns)
        )

    touched = {a.account for a in plan.actions}
    assert not any(is_protected(a) for a in touched)
    assert {a for a, _ in plan.protected} == {a for a in accts if is_protected(a)}
    assert touched | {a for a, _ in plan.protected} == set(accts)


CANARY = "canary-7d1f0c9e-SECRET-VALUE"


def test_a_canary_secret_never_appears_in_logs_database_or_output(make_company, home, tmp_path):
    company = make_company(systems=2)
    secret_file = tmp_path / "token"
    secret_file.write_text(CANARY + "\n")
    company.write_config(**{s: {"token": f"file:{secret_file}", "careless_logging": True} for s in company.systems})
    _fakes.add_faults(company.systems["sys1"], (401, None))  # its error message echoes the credential
    texts = []
    for args in (
        ["revoke", "user1@corp.example", "--yes"],
        ["status"],
        ["revoke", "user2@corp.example", "--yes", "--json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "offboard", "-vv", "--config", str(company.config_path), *args],
            env={**os.environ, "OFFBOARD_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        texts += [proc.stdout, proc.stderr]
    assert "request" in "".join(texts), "the debug logs should have been written"
    details = "".join(c["detail"] for c in Store.open(None, home).find_cases())
    assert "credentials rejected for [redacted]" in details
    for text in texts:
        assert CANARY not in text
    for path in home.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), f"canary found in {path}"
