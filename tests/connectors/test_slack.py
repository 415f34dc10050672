"""The Slack connector against the sandbox, through slack-sdk's WebClient and SCIMClient."""

from __future__ import annotations

import pytest

from offboard import Action, ActionKind
from offboard.errors import PermissionDenied
from offboard_connectors.slack import SlackConnector

from ._support import SandboxContract

SYSTEM = "slack"
_VOLATILE = ("updated", "sessions")  # sessions ended by a deactivation never come back


class TestSlack(SandboxContract):
    @pytest.fixture
    def connector(self, sandbox_settings):
        return SlackConnector("slack", sandbox_settings)

    @pytest.fixture
    def target_state(self, sandbox):
        sim = sandbox.sim(SYSTEM)
        return lambda account: {k: v for k, v in (sim.account(account.id) or {}).items() if k not in _VOLATILE}

    # -- beyond the contract ----------------------------------------------------

    def test_missing_scope_names_the_scope(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        granted = sim.granted
        sim.granted = set(granted) - {"admin.users:read"}
        try:
            with pytest.raises(PermissionDenied) as info:
                connector.apply(Action(ActionKind.REVOKE_SESSIONS, account))
            result = connector.check()
        finally:
            sim.granted = granted
        assert "admin.users:read" in info.value.permissions and "admin.users:read" in str(info.value)
        assert not result.ok and result.missing == ("admin.users:read",)

    def test_v1_fallback(self, sandbox_settings, sandbox_people, sandbox):
        sim = sandbox.sim(SYSTEM)
        connector = SlackConnector("slack", {**sandbox_settings, "scim_version": "v1"})
        account = connector.discover(next(sandbox_people).person)[0]
        sim.log.clear()
        connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        assert sim.log.entries(method="DELETE", contains="/scim/v1/Users/")
        assert sim.account(account.id)["active"] is False

    def test_list_accounts_pages(self, sandbox_settings, sandbox):
        connector = SlackConnector("slack", {**sandbox_settings, "page_size": 11})
        seen, cursor = [], None
        while True:
            page = connector.list_accounts(cursor)
            seen += [a.id for a in page.accounts]
            cursor = page.cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == len(sandbox.sim(SYSTEM).users)

    def test_deactivates_with_scim_delete(self, connector, sandbox_people, sandbox):
        """Slack documents DELETE /Users/<id> as the call that deactivates (PATCH overwrites values)."""
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(next(sandbox_people).person)[0]
        sim.log.clear()
        connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        writes = [(e.method, e.path) for e in sim.log.writes()]
        assert ("DELETE", f"/scim/v2/Users/{account.id}") in writes
        assert not [w for w in writes if w[0] == "PATCH"]
        assert sim.account(account.id)["active"] is False

    def test_in_bulk_sessions_are_reset_without_listing_first(self, connector, sandbox_people, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(next(sandbox_people).person)[0]
        sim.users[account.id]["sessions"] = [f"{account.id}-s{i}" for i in range(3)]
        action = Action(ActionKind.REVOKE_SESSIONS, account, {"bulk": True})
        sim.log.clear()
        receipt = connector.apply(action)
        assert receipt.changed and receipt.before == {}  # nothing to undo: the count before is not read
        assert not sim.log.entries(contains="admin.users.session.list")
        assert len(sim.log.entries(contains="admin.users.session.reset")) == 1
        assert connector.verify(action).ok  # the one listing: the read-back

    def test_deactivation_is_documented_to_end_sessions(self):
        by, url = SlackConnector.implied[ActionKind.REVOKE_SESSIONS]
        assert by is ActionKind.DISABLE_ACCOUNT and url.startswith("https://slack.com/help/articles/204475027")

    def test_session_listing_follows_the_cursor_with_team_id(self, connector, sandbox_people, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(next(sandbox_people).person)[0]
        sim.users[account.id]["sessions"] = [f"{account.id}-extra{i}" for i in range(3 * sim.knobs.page_cap)]
        action = Action(ActionKind.REVOKE_SESSIONS, account)
        before = connector.verify(action)
        assert before.observed["active_sessions"] == 3 * sim.knobs.page_cap
        sim.log.clear()
        receipt = connector.apply(action)
        assert receipt.changed and receipt.before["active_sessions"] == 3 * sim.knobs.page_cap
        listed = sim.log.entries(contains="admin.users.session.list")
        assert len(listed) >= 3
        assert connector.verify(action).ok


# -- handover: user groups and channels ------------------------------------------------------------


def _with_groups_and_channels(sandbox_people, sim, want_connect=False):
    for ident in sandbox_people:
        uid = sim._index.get(ident.email.lower())
        groups = [g for g in sim.groups.values() if uid in g["members"]]
        created = [c for c in sim.channels.values() if c["creator"] == uid and not c["is_private"]]
        if uid and groups and created and (not want_connect or any(c["is_ext_shared"] for c in created)):
            return ident, uid
    raise AssertionError("no such sandbox person left")


def test_user_groups_are_left_and_rejoined_on_undo_and_created_channels_are_named(sandbox_people, sandbox):
    sim = sandbox.sim(SYSTEM)
    connector = SlackConnector("slack", dict(sandbox.config()["connectors"][SYSTEM]["settings"]))
    ident, uid = _with_groups_and_channels(sandbox_people, sim, want_connect=True)
    account = connector.discover(ident.person)[0]
    groups = sorted(g["displayName"] for g in sim.groups.values() if uid in g["members"])
    action = Action(ActionKind.REMOVE_MEMBERSHIPS, account)
    assert not connector.verify(action).ok
    sim.log.clear()
    receipt = connector.apply(action)
    patches = [e for e in sim.log.entries(method="PATCH") if "/Groups/" in e.path]
    assert len(patches) == len(groups) and all(b'"remove"' in e.body for e in patches)
    assert sim.account(account.id)["groups"] == []
    connect = sorted("#" + c["name"] for c in sim.channels.values() if c["creator"] == uid and c["is_ext_shared"])
    assert receipt.before["slack_connect_channels"] == connect and all(c in receipt.detail for c in connect)
    assert "Slack cannot transfer" in receipt.detail
    assert not any(c.startswith("#priv-") for c in receipt.before["channels_created"]), "not shared with us"
    verification = connector.verify(action, receipt)
    assert verification.ok and "in no user group" in verification.detail
    assert connector.apply(action).changed is False
    connector.undo(receipt)
    assert sim.account(account.id)["groups"] == groups


def test_v1_removes_and_restores_user_groups_too(sandbox_people, sandbox):
    sim = sandbox.sim(SYSTEM)
    settings = {**sandbox.config()["connectors"][SYSTEM]["settings"], "scim_version": "v1", "channel_note": False}
    connector = SlackConnector("slack", settings)
    ident, uid = _with_groups_and_channels(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    groups = sim.account(account.id)["groups"]
    sim.log.clear()
    receipt = connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
    assert sim.account(account.id)["groups"] == [] and sim.log.entries(contains="/scim/v1/Groups/")
    assert not sim.log.entries(contains="users.conversations"), "channel_note: false lists no channels"
    connector.undo(receipt)
    assert sim.account(account.id)["groups"] == groups


def test_groups_go_before_deactivation_and_the_channel_handover_is_a_checklist_task():
    from offboard import Account, Person

    assert (ActionKind.REMOVE_MEMBERSHIPS, ActionKind.DISABLE_ACCOUNT) in SlackConnector.ordering
    person = Person(id="ana@corp.example", manager="bo@corp.example")
    account = Account("slack", "U1", "ana@corp.example")
    connector = SlackConnector.__new__(SlackConnector)  # manual_tasks reads nothing: no client needed
    connector.instance = "slack"
    elsewhere = Action(ActionKind.TRANSFER_OWNERSHIP, Account("google_workspace", "g1", "ana@corp.example"))
    tasks = connector.manual_tasks([Action(ActionKind.DISABLE_ACCOUNT, account), elsewhere], person)
    assert [t.id for t in tasks] == ["channels"] and "bo@corp.example" in tasks[0].title  # slack-channels in the plan
    assert "Slack Connect" in tasks[0].title and len(tasks[0].title) <= 300
    # a plain disable hands nothing over; a handover without a Slack account has nothing for Slack
    assert connector.manual_tasks([Action(ActionKind.DISABLE_ACCOUNT, account)], person) == []
    assert connector.manual_tasks([elsewhere], person) == []


def test_without_channel_scopes_the_groups_still_go_and_the_note_says_why(sandbox_people, sandbox):
    sim = sandbox.sim(SYSTEM)
    connector = SlackConnector("slack", dict(sandbox.config()["connectors"][SYSTEM]["settings"]))
    ident, uid = _with_groups_and_channels(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    granted = sim.granted
    sim.granted = set(granted) - {"channels:read"}
    try:
        receipt = connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        result = connector.check()
    finally:
        sim.granted = granted
    assert receipt.changed and sim.account(account.id)["groups"] == []
    assert "channels not listed" in receipt.detail and "channels:read" in receipt.detail
    assert result.ok and "channels:read" in result.detail
    connector.undo(receipt)


def test_a_bulk_run_sends_the_requests_the_eta_counts(sandbox_people, sandbox):
    """``SlackConnector.calls``/``reads`` are what the ETA counts. Before, ``remove_memberships`` declared
    nothing and the ETA took it for two requests on the first lane: 300 people's access cut was printed as
    4 min 53 s and took 6 min 31 s (its group PATCHes run before the disable, in the critical phase)."""
    sim = sandbox.sim(SYSTEM)
    connector = SlackConnector("slack", dict(sandbox.config()["connectors"][SYSTEM]["settings"]))
    ident, uid = _with_groups_and_channels(sandbox_people, sim)
    groups = sum(1 for g in sim.groups.values() if uid in g["members"])
    account = connector.discover(ident.person)[0]
    connector._scim_version()  # the version probe: once per process, not per action
    taken: list[str] = []
    connector.throttle = taken.append
    for kind in (ActionKind.REMOVE_MEMBERSHIPS, ActionKind.DISABLE_ACCOUNT):  # the connector's ordering
        action = Action(kind, account, {"bulk": True})
        taken.clear()
        connector.read_before(action)
        receipt = connector.apply(action)
        read_at = len(taken)
        assert connector.verify(action, receipt).ok
        sent = {lane: taken.count(lane) for lane in set(taken)}
        declared = dict(SlackConnector.calls[kind])
        if kind is ActionKind.REMOVE_MEMBERSHIPS:  # a PATCH per group: the declaration counts the sandbox's mean
            declared["scim_write"] = groups
        assert sent == declared, kind
        read = {lane: taken[read_at:].count(lane) for lane in set(taken[read_at:])}
        assert read == SlackConnector.reads[kind], kind
