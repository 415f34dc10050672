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
