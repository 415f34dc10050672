"""Critical-first bulk runs: everyone's access is cut on a system before its first cleanup call."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from offboard import ActionKind, hookimpl, plugins
from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine
from offboard.engine._schedule import CRITICAL, Phases, critical_kinds, priority, split

from .. import _fakes

CRITICAL_KINDS = {"disable_account", "revoke_sessions"}


class OrderedSystem(_fakes.TestSystem):
    """A test system whose vendor drops memberships it cannot list any more once the account is disabled."""

    __test__ = False
    name = "testsys_ordered"
    ordering = ((ActionKind.REMOVE_MEMBERSHIPS, ActionKind.DISABLE_ACCOUNT),)


class ImpliedSystem(_fakes.TestSystem):
    """A test system whose vendor documents that disabling an account ends its sessions."""

    __test__ = False
    name = "testsys_implied"
    implied = {ActionKind.REVOKE_SESSIONS: (ActionKind.DISABLE_ACCOUNT, "https://vendor.example/docs/deactivate")}


class LanedSystem(_fakes.TestSystem):
    """A test system whose vendor meters each endpoint on its own, as Okta does: session revocation (and its
    read-back) on a slow lane, accounts and group memberships on lanes of their own."""

    __test__ = False
    name = "testsys_laned"
    rate_limits = {"sessions": (20.0, 1), "accounts": (400.0, 50), "groups": (400.0, 50)}
    lanes = {
        ActionKind.REVOKE_SESSIONS: "sessions",
        ActionKind.DISABLE_ACCOUNT: "accounts",
        ActionKind.REMOVE_MEMBERSHIPS: "groups",
    }
    calls = {kind: {lane: 1} for kind, lane in lanes.items()}
    reads = calls

    def _write(self, action, field, new):
        self.throttle(self.lanes[action.kind])
        return super()._write(action, field, new)

    read_back: list[tuple[str, float]] = []  # (kind, when) of each action's read-back, in this process

    def verify(self, action, receipt=None):
        self.throttle(self.lanes[action.kind])
        try:
            return super().verify(action, receipt)
        finally:
            if receipt is not None:  # the action's own read-back (the closing check reads without one)
                self.read_back.append((action.kind.value, time.time()))


class LanedSharedSystem(LanedSystem):
    """The same, but listing memberships takes the sessions' lane too (cleanup shares a critical lane)."""

    __test__ = False
    name = "testsys_laned_shared"
    calls = {**LanedSystem.calls, ActionKind.REMOVE_MEMBERSHIPS: {"groups": 1, "sessions": 1}}
    reads = calls

    def _write(self, action, field, new):
        if action.kind is ActionKind.REMOVE_MEMBERSHIPS:
            self.throttle("sessions")
        return super()._write(action, field, new)


class _Plugin:
    @hookimpl
    def register_connectors(self, register):
        register(OrderedSystem)
        register(ImpliedSystem)
        register(LanedSystem)
        register(LanedSharedSystem)


@pytest.fixture
def ordered_plugin():
    pm = plugins.get_plugin_manager()
    plugin = _Plugin()
    pm.register(plugin)
    yield
    pm.unregister(plugin)


def _bulk_company(make_company, tmp_path, people: int):
    company = make_company(systems=2, people=people)
    policy = tmp_path / "bulk.yaml"
    # cleanup first on purpose: the policy's order is not a constraint, the connector's ``ordering`` is
    policy.write_text("name: bulk\nactions: [remove_memberships, disable_account, revoke_sessions]\n")
    data = yaml.safe_load(company.config_path.read_text())
    data["connectors"]["sys0"].update(rate=400.0, burst=1, concurrency=4)  # rate-limited
    data["connectors"]["sys1"].update(type="testsys_ordered", rate=400.0, burst=1, concurrency=4)
    data.update(policies=[str(policy)], default_policy="bulk")
    company.config_path.write_text(yaml.safe_dump(data))
    return company


def _writes(path):
    db = _fakes.open_db(path)
    rows = db.execute("select account, kind, t from writes order by n").fetchall()
    db.close()
    return rows


def test_a_bulk_run_cuts_everyones_access_before_any_cleanup_and_keeps_each_accounts_order(
    make_company, tmp_path, ordered_plugin
):
    people = 24
    company = _bulk_company(make_company, tmp_path, people)
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        plans = [engine.plan(f"user{i}@corp.example") for i in range(people)]
        case_ids = [engine.open_case(plan, trigger="test") for plan in plans]
        results = engine.run_cases(case_ids)
        timing = {system: t.to_dict() for system, t in engine.last_timing.items()}
    finally:
        engine.close()
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]

    # sys0: no ordering constraints; every access-cutting write comes before the first cleanup write
    writes = _writes(company.systems["sys0"])
    kinds = [kind for _, kind, _ in writes]
    assert len(writes) == 3 * people
    first_cleanup = kinds.index("remove_memberships")
    assert set(kinds[:first_cleanup]) == CRITICAL_KINDS and first_cleanup == 2 * people
    assert set(kinds[first_cleanup:]) == {"remove_memberships"}
    assert timing["sys0"]["access_cut_seconds"] <= timing["sys0"]["cleanup_end_seconds"]

    # sys1: remove_memberships must come before disable_account on each account, so it is critical there
    # (it runs with the critical phase) and the order holds account by account
    ordered = _writes(company.systems["sys1"])
    assert len(ordered) == 3 * people
    for i in range(people):
        mine = [kind for account, kind, _ in ordered if account == f"id-user{i}"]
        assert mine.index("remove_memberships") < mine.index("disable_account")
    assert timing["sys1"]["cleanup_chains"] == 0  # nothing left for a cleanup phase there
    for system in company.systems:
        for i in range(people):
            state = company.state(system, f"user{i}")
            assert state["enabled"] is False and state["sessions"] == 0 and state["groups"] == []


@pytest.mark.parametrize("kind", ["testsys_laned", "testsys_laned_shared"])
def test_cleanup_runs_beside_the_critical_phase_only_on_lanes_it_leaves_idle(
    make_company, tmp_path, ordered_plugin, kind
):
    """Okta's critical phase is bound by the System Log's 50 reads a minute; its memberships' lanes idled
    through it, and the 300-person run ended 1.28x its bound. Cleanup that takes none of the critical lanes now
    runs beside the critical phase, each account's after its own access is cut; cleanup that shares a
    critical lane still waits until everyone's access is cut."""
    people = 12
    company = _bulk_company(make_company, tmp_path, people)
    data = yaml.safe_load(company.config_path.read_text())
    data["connectors"]["sys0"] = {k: v for k, v in data["connectors"]["sys0"].items() if k not in ("rate", "burst")}
    # one slot: a call waiting for a session token must lend it (a wait for a token is not a request in flight)
    data["connectors"]["sys0"].update(type=kind, concurrency=1)
    company.config_path.write_text(yaml.safe_dump(data))
    LanedSystem.read_back.clear()
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        case_ids = [engine.open_case(engine.plan(f"user{i}@corp.example"), trigger="test") for i in range(people)]
        results = engine.run_cases(case_ids)
        timing = engine.last_timing["sys0"]
    finally:
        engine.close()
    assert all(r.ok for r in results), [r.detail for r in results if not r.ok]
    writes = _writes(company.systems["sys0"])
    assert len(writes) == 3 * people
    # an access is cut when the read-back has seen it gone
    last_cut = max(t for kind_, t in LanedSystem.read_back if kind_ in CRITICAL_KINDS)
    early = [account for account, kind_, t in writes if kind_ == "remove_memberships" and t < last_cut]
    for i in range(people):  # each account's order: its access is cut before its memberships go
        mine = [kind_ for account, kind_, _ in writes if account == f"id-user{i}"]
        assert mine[-1] == "remove_memberships" and set(mine[:2]) == CRITICAL_KINDS
    if kind == "testsys_laned":
        # 24 session tokens at 20/s take over a second, and the read-backs queue behind every revocation: the
        # memberships' lane is free all that time, and every account but the last has its memberships removed
        # before the last access is cut
        assert len(early) >= people // 2, f"only {len(early)} of {people} memberships ran beside the critical phase"
    else:
        assert early == []
    assert timing.access_cut is not None and timing.cleanup_end >= timing.access_cut
    for i in range(people):
        state = company.state("sys0", f"user{i}")
        assert state["enabled"] is False and state["sessions"] == 0 and state["groups"] == []


def test_a_call_waiting_for_a_lanes_token_lends_its_slot_to_a_call_on_another_lane(
    make_company, tmp_path, ordered_plugin
):
    """A wait for a token is not a request in flight. Before, a call waiting for the System Log's next token
    (Okta: 1.2 s apart) held one of the system's four slots all that time, and calls on the idle lanes
    queued behind those that waited."""
    import threading

    company = _bulk_company(make_company, tmp_path, 1)
    data = yaml.safe_load(company.config_path.read_text())
    data["connectors"]["sys0"] = {"type": "testsys_laned", "concurrency": 1, "settings": {"path": "x"}}
    data["connectors"]["sys0"]["rates"] = {"sessions": 0.5}  # a token every 2 s
    company.config_path.write_text(yaml.safe_dump(data))
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        connector = engine.connector("sys0")
        waiting = threading.Event()

        def slow():
            connector.throttle("sessions")  # the burst's token
            waiting.set()
            connector.throttle("sessions")  # waits 2 s

        thread = threading.Thread(target=engine.call, args=("sys0", slow))
        thread.start()
        assert waiting.wait(10)
        time.sleep(0.1)  # the slow call is now waiting for its token
        started = time.monotonic()
        engine.call("sys0", lambda: connector.throttle("groups"))
        took = time.monotonic() - started
        thread.join()
    finally:
        engine.close()
    assert took < 1.0, f"a call on an idle lane waited {took:.1f} s for the slot of a call waiting for a token"


def test_one_persons_case_keeps_the_policy_order(make_company, tmp_path, ordered_plugin):
    company = _bulk_company(make_company, tmp_path, 2)
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        result = engine.revoke("user0@corp.example")
    finally:
        engine.close()
    assert result.ok
    assert [kind for _, kind, _ in _writes(company.systems["sys0"])] == [
        "remove_memberships",
        "disable_account",
        "revoke_sessions",
    ]


def test_kinds_a_critical_kind_waits_on_are_critical_too():
    handover = ActionKind.HANDOVER_MAILBOX
    reply = ActionKind.SET_AUTO_REPLY
    assert handover not in CRITICAL and priority(handover) == 1 and priority("disable_account") == 0
    found = critical_kinds([(reply, handover), (handover, ActionKind.DISABLE_ACCOUNT)])
    assert {handover, reply} <= found  # transitively
    assert ActionKind.REMOVE_LICENSES not in critical_kinds([(ActionKind.DISABLE_ACCOUNT, ActionKind.REMOVE_LICENSES)])


def test_split_keeps_the_chains_order_in_each_part():
    rows = [{"kind": k} for k in ("remove_memberships", "handover_mailbox", "disable_account", "delete_account")]
    first, rest = split(rows, critical_kinds([(ActionKind.HANDOVER_MAILBOX, ActionKind.DISABLE_ACCOUNT)]))
    assert [r["kind"] for r in first] == ["handover_mailbox", "disable_account"]
    assert [r["kind"] for r in rest] == ["remove_memberships", "delete_account"]


def test_a_failing_part_is_reported_after_everyone_else_ran():
    ran: list[str] = []

    def run(part):
        ran.append(part)
        if part == "boom":
            raise RuntimeError("connector bug")

    phases = Phases(lambda system, job: job(), run)
    phases.add("s", "boom", True)
    phases.add("s", "later", False)
    phases.start()
    with pytest.raises(RuntimeError, match="connector bug"):
        phases.wait()
    assert ran == ["boom", "later"]
    assert json.dumps(phases.timing["s"].to_dict())


def test_a_bulk_plan_covers_what_the_vendor_documents_and_says_where(make_company, tmp_path, ordered_plugin):
    company = _bulk_company(make_company, tmp_path, 2)
    data = yaml.safe_load(company.config_path.read_text())
    data["connectors"]["sys1"]["type"] = "testsys_implied"
    company.config_path.write_text(yaml.safe_dump(data))
    engine = Engine.open(load_config(company.config_path), data_dir())
    try:
        single = engine.plan("user0@corp.example")
        bulk = engine.plan("user0@corp.example", bulk=True)
    finally:
        engine.close()
    assert not single.covered and ("sys1", "revoke_sessions") in {
        (a.account.system, a.kind.value) for a in single.actions
    }
    assert [(a.account.system, a.kind.value, by.value, url) for a, by, url in bulk.covered] == [
        ("sys1", "revoke_sessions", "disable_account", "https://vendor.example/docs/deactivate")
    ]
    assert ("sys1", "revoke_sessions") not in {(a.account.system, a.kind.value) for a in bulk.actions}
    assert all(a.params.get("bulk") is True for a in bulk.actions)
    assert bulk.to_dict()["covered"][0]["documented"] == "https://vendor.example/docs/deactivate"


def test_a_bulk_run_closes_more_than_eight_cases_at_once(make_company, tmp_path, ordered_plugin, monkeypatch):
    """A close mostly waits on its residual reads: more than eight must be able to wait at once (eight closer
    threads held the last closes of a faulty 200-person run for 52 s after the work had ended)."""
    import threading

    people, wanted = 12, 9
    company = _bulk_company(make_company, tmp_path, people)
    engine = Engine.open(load_config(company.config_path), data_dir())
    lock, enough = threading.Lock(), threading.Event()
    waiting, peak = [0], [0]
    close = engine.close_case

    def close_waiting(case_id, seal=True, gate=None, checked=None):
        with lock:  # closes waiting at this moment: nine are reached only if more than eight run at once
            waiting[0] += 1
            peak[0] = max(peak[0], waiting[0])
            if waiting[0] >= wanted:
                enough.set()
        enough.wait(timeout=30)
        with lock:
            waiting[0] -= 1
        return close(case_id, seal, gate, checked)

    monkeypatch.setattr(engine, "close_case", close_waiting)
    try:
        case_ids = [engine.open_case(engine.plan(f"user{i}@corp.example"), trigger="test") for i in range(people)]
        results = engine.run_cases(case_ids)
    finally:
        engine.close()
    assert enough.is_set(), f"at most {peak[0]} closes ran at once"
    assert len(results) == people and all(r.ok for r in results), [r.detail for r in results if not r.ok]


def test_wait_returns_only_after_the_system_cut_callback_has_run():
    """When the batch's last part is its last critical one, ``wait()`` returned as soon as the part was counted,
    while the callback that follows it had still to run (then one that submitted the held closes): the caller
    then shut the close pool and the held cases were closed one by one after the batch (seen as a 30 s stall in
    a loaded CI run)."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    from offboard.engine._schedule import Phases

    pool = ThreadPoolExecutor(2)
    ran: list[str] = []

    def access_cut(system):
        time.sleep(0.3)  # the window the race needs, made wide
        ran.append("access cut")

    phases = Phases(lambda system, job: pool.submit(job), lambda part: None, clock=time.monotonic)
    phases.on_system_cut = access_cut
    phases.add("sys0", "the only part", True)
    try:
        phases.start()
        phases.wait()
        assert ran == ["access cut"]
    finally:
        pool.shutdown(wait=True)


def _run_while_user0_hangs_on_sys1(make_company, tmp_path, monkeypatch, read, meanwhile=None):
    """Two people's bulk run in which user0's disable on sys1 hangs until the closing check has read ``read``
    (system, person); then ``meanwhile(checks so far)``. Returns the results and every check as (system, person,
    whether the hang had ended)."""
    import threading

    from offboard.engine import _check

    company = _bulk_company(make_company, tmp_path, 2)
    engine = Engine.open(load_config(company.config_path), data_dir())
    hang, checked, lock, reached = threading.Event(), [], threading.Lock(), threading.Event()
    check_system = _check._check_system

    def recording(engine_, name, person, actions):
        with lock:
            checked.append((name, person.id, hang.is_set()))
        if (name, person.id) == read:
            reached.set()
        return check_system(engine_, name, person, actions)

    monkeypatch.setattr(_check, "_check_system", recording)
    sys1 = engine.connector("sys1")
    apply = sys1.apply

    def hanging(action, *args):
        if action.kind is ActionKind.DISABLE_ACCOUNT and action.account.name == "user0":
            assert hang.wait(30)
        return apply(action, *args)

    sys1.apply = hanging
    results = []
    try:
        case_ids = [engine.open_case(engine.plan(f"user{i}@corp.example"), trigger="test") for i in range(2)]
        running = threading.Thread(target=lambda: results.extend(engine.run_cases(case_ids)))
        running.start()
        try:
            assert reached.wait(15), f"{read} was not read while user0's disable on sys1 hung"
            if meanwhile is not None:
                with lock:
                    meanwhile(list(checked))
        finally:
            hang.set()
            running.join(30)
    finally:
        hang.set()
        engine.close()
    assert len(results) == 2 and all(r.ok for r in results), [r.detail for r in results]
    return checked


def test_a_closing_check_reads_a_system_once_it_has_cut_everyones_access_and_the_others_at_once(
    make_company, tmp_path, ordered_plugin, monkeypatch
):
    """user0's disable on sys1 hangs: user1's case is done meanwhile, and its closing check reads sys0 at once
    but sys1 only after sys1 has cut everyone's access (before, the whole close waited for every system)."""

    def sys1_not_through(checked):
        assert ("sys1", "user1@corp.example", False) not in checked

    checked = _run_while_user0_hangs_on_sys1(
        make_company, tmp_path, monkeypatch, ("sys0", "user1@corp.example"), sys1_not_through
    )
    assert [(name, who) for name, who, released in checked if name == "sys1" and not released] == []
    assert {(name, who) for name, who, _ in checked} == {
        (system, f"user{i}@corp.example") for system in ("sys0", "sys1") for i in range(2)
    }


def test_a_closing_check_reads_a_system_as_soon_as_the_persons_work_there_has_ended(
    make_company, tmp_path, ordered_plugin, monkeypatch
):
    """user0's disable on sys1 hangs: user0's work on sys0 is done, and sys0 has cut everyone's access, so the
    closing check reads sys0 for user0 meanwhile (before, the check began only when the person's work on every
    system had ended: in a 1,000-person run the last people's Slack reads came 27 s after Google's last token)."""
    checked = _run_while_user0_hangs_on_sys1(make_company, tmp_path, monkeypatch, ("sys0", "user0@corp.example"))
    # each system read once per person, sys1 only after it had cut everyone's access
    assert sorted((name, who) for name, who, _ in checked) == sorted(
        (system, f"user{i}@corp.example") for system in ("sys0", "sys1") for i in range(2)
    )
    assert [(name, who) for name, who, released in checked if name == "sys1" and not released] == []
    entries = [json.loads(x) for x in (data_dir() / "audit" / "entries.jsonl").read_bytes().splitlines()]
    checks = [e for e in entries if e["type"] == "residual_check"]
    assert len(checks) == 2 and all(sorted(c["checked"]) == ["sys0", "sys1"] and c["clean"] for c in checks), checks


def test_a_system_that_cannot_be_read_at_the_close_is_named_in_the_check_and_the_rest_closes(
    make_company, tmp_path, ordered_plugin, monkeypatch
):
    """A bulk run's closing check of one system fails (here sys0's reads raise): each case still closes, and its
    residual_check entry names sys0 under errors and sys1 as checked, as the check of a single case does."""
    from offboard.engine import _check
    from offboard.errors import TransientError

    company = _bulk_company(make_company, tmp_path, 2)
    engine = Engine.open(load_config(company.config_path), data_dir())
    check_system = _check._check_system

    def failing(engine_, name, person, actions):
        if name == "sys0":
            raise TransientError("read timed out", system="sys0")
        return check_system(engine_, name, person, actions)

    monkeypatch.setattr(_check, "_check_system", failing)
    try:
        case_ids = [engine.open_case(engine.plan(f"user{i}@corp.example"), trigger="test") for i in range(2)]
        results = engine.run_cases(case_ids)
    finally:
        engine.close()
    assert len(results) == 2
    entries = [json.loads(x) for x in (data_dir() / "audit" / "entries.jsonl").read_bytes().splitlines()]
    checks = [e for e in entries if e["type"] == "residual_check"]
    assert len(checks) == 2
    for entry in checks:
        assert entry["checked"] == ["sys1"] and not entry["clean"]
        assert entry["errors"] == {"sys0": "TransientError: read timed out"}, entry["errors"]
