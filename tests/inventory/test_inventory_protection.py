"""Property: for random people, policies and protected lists, no protected account ever appears in a plan."""

from __future__ import annotations

import fnmatch
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboard.config._config import Config
from offboard.config._policy import Policy
from offboard.engine._engine import Engine
from offboard.inventory._sweep import run_sweep
from offboard.models import Account, ActionKind, Person
from offboard.state._store import Store
from offboard.state.schema import inventory_accounts

from .. import _fakes

SYSTEMS = ("sys0", "sys1")
WORDS = [
    "alice",
    "bob",
    "svc-ci",
    "svc-backup",
    "admin-ops",
    "breakglass",
    "Break-Glass2",
    "root",
    "ops-admin",
    "carol.smith",
]
names = st.one_of(st.sampled_from(WORDS), st.from_regex(r"[a-z][a-z0-9.\-]{0,10}", fullmatch=True))
accounts = st.builds(
    lambda system, n, name, domain, admin: Account(
        system, f"id-{n}-{name}", name, f"{name}@{domain}" if domain else None, True, admin
    ),
    st.sampled_from(SYSTEMS),
    st.integers(0, 10_000),
    names,
    st.sampled_from(["corp.example", "CORP.example", None]),
    st.booleans(),
)
patterns = st.sampled_from(
    ["svc-*", "*admin*", "break*", "*@corp.example", "root", "b?b", "[ab]*", "ALICE", "*.smith*"]
)
regexes = st.sampled_from([r"^svc-", r"admin$", r"glass\d*", r"^carol\."])
policies = st.builds(
    lambda actions, names_, patterns_, regex, admins: Policy.model_validate(
        {
            "name": "p",
            "actions": actions,
            "protected": {"names": names_, "patterns": patterns_, "regex": regex, "admins": admins},
        }
    ),
    st.lists(
        st.sampled_from([ActionKind.DISABLE_ACCOUNT, ActionKind.REVOKE_SESSIONS, ActionKind.REMOVE_MEMBERSHIPS]),
        min_size=1,
        max_size=3,
        unique=True,
    ),
    st.lists(names, max_size=4),
    st.lists(patterns, max_size=3),
    st.lists(regexes, max_size=2),
    st.booleans(),
)
protected_lists = st.lists(st.one_of(names, patterns, names.map(lambda n: f"{n}@corp.example")), max_size=5)
people = st.builds(
    lambda n, kind: Person(f"p{n}@corp.example", f"p{n}@corp.example", employee_id=f"E{n}", type=kind),
    st.integers(0, 99),
    st.sampled_from(["employee", "contractor"]),
)


def is_protected(account: Account, policy: Policy, extra: list[str]) -> bool:
    """An independent statement of the rule: admins (if the policy says so), names, globs, regexes; case-insensitive."""
    if policy.protected.admins and account.admin:
        return True
    keys = [k.lower() for k in (account.name, account.email, account.id) if k]
    listed = [n.lower() for n in policy.protected.names] + [e.lower() for e in extra if not any(c in e for c in "*?[")]
    globs = [p.lower() for p in policy.protected.patterns] + [e.lower() for e in extra if any(c in e for c in "*?[")]
    return (
        any(k in listed for k in keys)
        or any(fnmatch.fnmatchcase(k, g) for k in keys for g in globs)
        or any(re.search(r, k, re.I) for k in keys for r in policy.protected.regex)
    )


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("protection")
    for system in SYSTEMS:
        _fakes.seed(root / f"{system}.db", [])
    hr = root / "hr.json"
    hr.write_text("[]")
    config = Config.model_validate(
        {
            "plugins": [_fakes.__file__],
            "connectors": {s: {"type": "testsys", "settings": {"path": str(root / f"{s}.db")}} for s in SYSTEMS},
            "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
            "limits": {"max_cases": 1000, "max_percent": 100},
        }
    )
    from offboard.config._config import load_plugins

    load_plugins(config)
    store = Store.open(None, root)
    engine = Engine(config, store, root)
    engine.hr = hr
    yield engine
    engine.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(person=people, policy=policies, extra=protected_lists, held=st.lists(accounts, max_size=12))
def test_no_protected_account_in_a_plan(engine, person, policy, extra, held):
    engine.config = engine.config.model_copy(update={"protected": extra})
    plan = engine.plan_for(person, policy, held)
    for action in plan.actions:
        assert not is_protected(action.account, policy, extra), action.account
    planned = {a.account.ref for a in plan.actions}
    assert {a.ref for a in held if not is_protected(a, policy, extra)} <= planned | {a.ref for a, _ in plan.unsupported}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    leavers=st.lists(people, min_size=1, max_size=5, unique_by=lambda p: p.id),
    policy=policies,
    extra=protected_lists,
    held=st.lists(accounts, min_size=1, max_size=15, unique_by=lambda a: (a.system, a.id)),
    owners=st.randoms(),
)
def test_no_protected_account_in_a_sweep_plan(engine, leavers, policy, extra, held, owners):
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    engine.hr.write_text(json.dumps([{**p.to_dict(), "end_date": past} for p in leavers]))
    engine.config = engine.config.model_copy(update={"protected": extra})
    engine.policies = {
        "default": policy.model_copy(update={"name": "default"}),
        "contractor": policy.model_copy(update={"name": "contractor"}),
    }
    with engine.store._db.begin() as conn:
        conn.execute(inventory_accounts.delete())
    now = datetime.now(UTC)
    engine.store.inventory.upsert(
        [
            {
                "system": a.system,
                "account_id": a.id,
                "name": a.name,
                "email": a.email,
                "active": True,
                "admin": a.admin,
                "person_id": owners.choice(leavers).id,
                "matched_by": "email",
                "attributes": "{}",
                "first_seen": now,
                "last_seen": now,
            }
            for a in held
        ],
    )
    result = run_sweep(engine, dry_run=True, sync=False)
    planned = [a.account for plan in result.plans for a in plan.actions]
    assert not [a for a in planned if is_protected(a, policy, extra)]
    assert {a.ref for a in held if not is_protected(a, policy, extra)} == {a.ref for a in planned}
