"""The Okta connector against the sandbox's Okta simulator (over TLS), through the official okta SDK."""

from __future__ import annotations

import secrets

import pytest

from offboard import Action, ActionKind, Person
from offboard.errors import NotFound, PermanentError, PermissionDenied, RateLimited
from offboard_connectors.okta import OktaConnector

from ._support import SandboxContract

SYSTEM = "okta"


class TestOkta(SandboxContract):
    connector_class = OktaConnector

    @pytest.fixture
    def target_state(self, sandbox):
        sim = sandbox.sim(SYSTEM)
        return lambda account: sim.account(account.id)

    @pytest.fixture
    def list_connector(self, sandbox_settings):
        return OktaConnector("sandbox", {**sandbox_settings, "page_size": 60})

    # -- beyond the contract ----------------------------------------------------

    def test_discovers_by_second_email(self, connector, sandbox):
        sim = sandbox.sim(SYSTEM)
        user = next(u for u in sim.users.values() if u["profile"].get("secondEmail"))
        found = connector.discover(Person(id=user["profile"]["secondEmail"], email=user["profile"]["secondEmail"]))
        assert [a.id for a in found] == [user["id"]]

    def test_disable_suspends_and_undo_unsuspends(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        sim.log.clear()
        receipt = connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        assert [(e.method, e.path) for e in sim.log.writes()] == [
            ("POST", f"/api/v1/users/{account.id}/lifecycle/suspend")
        ]
        assert sim.account(account.id)["status"] == "SUSPENDED" and receipt.before == {"status": "ACTIVE"}
        connector.undo(receipt)
        assert sim.account(account.id)["status"] == "ACTIVE"

    def test_suspend_of_a_user_okta_will_not_suspend_is_refused_clearly(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        sim.users[account.id]["status"] = "PROVISIONED"
        with pytest.raises(PermanentError, match="only ACTIVE users; this one is PROVISIONED"):
            connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))

    def test_the_simulator_refuses_suspending_a_suspended_user_as_okta_does(self, connector, person, sandbox):
        """Okta: suspend only from ACTIVE; the simulator answers 400 with an Okta error body."""
        import asyncio

        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        sim.users[account.id]["status"] = "SUSPENDED"
        client = connector._sdk()
        answer = asyncio.run(client.suspend_user(account.id))
        error = answer[-1]
        assert error.status == 400 and error.error_code == "E0000001" and error.error_id
        assert "not ACTIVE" in error.error_causes[0]["errorSummary"]

    def test_deactivate_is_destructive_and_removes_groups(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        action = Action(ActionKind.DELETE_ACCOUNT, account)
        assert ActionKind.DELETE_ACCOUNT not in connector.reversible()
        receipt = connector.apply(action)
        state = sim.account(account.id)
        assert receipt.changed and state["status"] == "DEPROVISIONED" and state["groups"] == ["Everyone"]
        assert connector.verify(action, receipt).ok
        assert connector.apply(action).changed is False

    def test_sessions_cleared_with_oauth_tokens_and_read_back_from_the_system_log(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        action = Action(ActionKind.REVOKE_SESSIONS, account)
        assert not connector.verify(action).ok
        sim.log.clear()
        connector.apply(action)
        deletes = sim.log.entries(method="DELETE")
        assert [(e.path, e.query) for e in deletes] == [(f"/api/v1/users/{account.id}/sessions", "oauthTokens=true")]
        assert connector.verify(action).ok
        sim.sign_in(account.id)  # a new sign-in after the clear: the read-back sees it
        assert not connector.verify(action).ok

    def test_app_groups_and_everyone_are_left_alone(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        assert sim.account(account.id)["groups"] == ["Everyone"]
        assert not [e for e in sim.log.entries(method="DELETE") if "/groups/" in e.path and e.status >= 400]

    def test_direct_app_assignments_are_removed_only_by_setting(self, sandbox_settings, sandbox_people, sandbox):
        sim = sandbox.sim(SYSTEM)
        engineer = next(p for p in sandbox_people if "engineering" in sim.account(p.person.email)["groups"])
        connector = OktaConnector("sandbox", {**sandbox_settings, "unassign_apps": True})
        account = connector.discover(engineer.person)[0]
        assert sim.account(account.id)["apps"] == ["GitHub SSO", "Zoom"]
        action = Action(ActionKind.REVOKE_APP_GRANTS, account)
        assert not connector.verify(action).ok
        sim.log.clear()
        receipt = connector.apply(action)
        assert receipt.before["apps"] == [{"id": receipt.before["apps"][0]["id"], "label": "Zoom"}]
        assert [e.query for e in sim.log.entries(method="DELETE") if "/apps/" in e.path] == ["sendEmail=false"]
        # GitHub SSO is assigned through the engineering group: it goes with the membership, not by itself
        assert sim.account(account.id)["apps"] == ["GitHub SSO"] and connector.verify(action).ok
        connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        assert sim.account(account.id)["apps"] == []
        assert ActionKind.REVOKE_APP_GRANTS not in connector.reversible()

    def test_missing_scope_names_it(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        sim.deny("okta.groups.manage")
        try:
            with pytest.raises(PermissionDenied) as info:
                connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        finally:
            sim.allow("okta.groups.manage")
        assert info.value.permissions == ("okta.groups.manage",) and "okta.groups.manage" in str(info.value)

    def test_rate_limit_comes_from_x_rate_limit_reset(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        with sim.force(429, retry_after=30, count=1):
            with pytest.raises(RateLimited) as info:
                connector.discover(person)
        assert info.value.retry_after == pytest.approx(30, abs=1) and info.value.lane == "users"
        entry = sim.log.entries()[-1]
        assert entry.status == 429

    def test_every_answer_carries_okta_rate_limit_headers(self, connector, person, sandbox):
        import httpx

        sim = sandbox.sim(SYSTEM)
        with httpx.Client(verify=connector.settings.ca_file, trust_env=False) as raw:
            answer = raw.get(
                f"{sim.base_url}/api/v1/users?limit=2",
                headers={"Authorization": f"SSWS {connector.settings.token.reveal()}"},
            )
        assert answer.status_code == 200
        assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= set(answer.headers)
        assert 'rel="next"' in answer.headers["link"] and "after=" in answer.headers["link"]

    def test_unknown_user_id_is_not_found(self, connector, person):
        account = connector.discover(person)[0]
        ghost = Action(ActionKind.DISABLE_ACCOUNT, type(account)(account.system, "00uNOBODY0000000000", "ghost"))
        with pytest.raises(NotFound):
            connector.apply(ghost)

    def test_an_untrusted_certificate_is_a_permanent_error_in_words(self, sandbox_settings, person):
        connector = OktaConnector("sandbox", {**sandbox_settings, "ca_file": None})
        with pytest.raises(PermanentError, match="not trusted"):
            connector.discover(person)

    def test_secret_never_in_settings_repr(self, connector, secret_values):
        assert secret_values and all(v not in repr(connector.settings) for v in secret_values)


def test_every_simulated_route_is_an_okta_operation(sandbox):
    """The simulator serves only operations of Okta's Management API (as the okta SDK, generated from it, has them)."""
    from ._spec import _okta, _template

    operations = {(verb, rx.pattern) for verb, rx, _, _ in _okta()}
    for method, pattern in sandbox.sim(SYSTEM).routes():
        assert (method, _template(pattern).pattern) in operations, (method, pattern)


class TestOktaSettings:
    def test_missing_org_url_and_token_are_named(self):
        from pydantic import ValidationError

        with pytest.raises(ValidationError) as info:
            OktaConnector("okta", {})
        text = str(info.value)
        assert "org_url" in text and "token" in text

    def test_a_page_larger_than_okta_serves_is_refused(self):
        from pydantic import ValidationError

        with pytest.raises(ValidationError, match="page_size"):
            OktaConnector(
                "okta", {"org_url": "https://corp.okta.com", "token": "00" + secrets.token_hex(20), "page_size": 500}
            )

    def test_an_answer_the_sdk_cannot_read_is_a_permanent_error_in_words(self, sandbox, sandbox_settings):
        """A body Okta's model does not allow (here: a user without an id) fails clearly, not with a traceback."""
        from offboard.sandbox import Response

        sim = sandbox.sim(SYSTEM)
        original = sim.list_users

        async def broken(req):
            return Response(200, [{"status": 17, "profile": "not an object"}])

        sim._static[("GET", "/api/v1/users")] = (broken, False, None)
        try:
            with pytest.raises(PermanentError, match="okta SDK failed"):
                OktaConnector("sandbox", sandbox_settings).list_accounts()
        finally:
            sim._static[("GET", "/api/v1/users")] = (original, False, None)
