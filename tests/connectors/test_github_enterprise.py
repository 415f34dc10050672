"""The GitHub connector for an organization in an enterprise: Copilot seats, enterprise membership and
enterprise-level SAML (its own sandbox, so it has fresh people)."""

from __future__ import annotations

import pytest

from offboard import Action, ActionKind
from offboard.errors import PermissionDenied
from offboard.testing import ConnectorContract

from .test_github import _GitHubFixtures

SYSTEM = "github"


class TestGitHubEnterprise(_GitHubFixtures, ConnectorContract):
    """An organization in an enterprise: Copilot seats and enterprise membership, enterprise-level SAML."""

    extra = {"enterprise": "ENTERPRISE"}
    kinds = (ActionKind.REMOVE_LICENSES, ActionKind.REMOVE_MEMBERSHIPS)

    @pytest.fixture
    def target_state(self, sandbox):
        sim = sandbox.sim(SYSTEM)

        def state(account):
            login = account.id.lower()
            return {
                "member": sim.account(account.id),
                "enterprise": login in sim.enterprise_members,
                "seat": dict(sim.copilot_seats.get(login) or {}),
            }

        return state

    def test_enterprise_level_saml_finds_the_login(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        sim.saml_level = "enterprise"
        try:
            found = connector.discover(person)
        finally:
            sim.saml_level = "org"
        assert found, "SAML at the enterprise level: the login comes from Enterprise.ownerInfo.samlIdentityProvider"
        assert [e for e in sim.log.entries(method="POST", path="/graphql") if b"ownerInfo" in e.body]

    def test_removed_from_every_org_but_still_an_enterprise_member_with_a_seat(
        self, connector, sandbox_people, sandbox
    ):
        sim = sandbox.sim(SYSTEM)
        person = next(i for i in sandbox_people if i.github_login and not i.outside_collaborator).person
        account = connector.discover(person)[0]
        connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))  # out of the organization
        login = account.id.lower()
        assert login in sim.enterprise_members and sim.copilot_seats[login]["pending_cancellation_date"] is None
        seat = Action(ActionKind.REMOVE_LICENSES, account)
        assert connector.apply(seat).changed and connector.verify(seat).ok
        assert sim.copilot_seats[login]["pending_cancellation_date"]
        member = Action(ActionKind.REMOVE_MEMBERSHIPS, account)
        assert not connector.verify(member).ok
        assert connector.apply(member).changed and connector.verify(member).ok
        assert login not in sim.enterprise_members

    def test_enterprise_actions_name_admin_enterprise(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        granted = sim.granted
        sim.granted = frozenset(granted - {"admin:enterprise"})
        try:
            with pytest.raises(PermissionDenied) as info:
                connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
            result = connector.check()
        finally:
            sim.granted = granted
        assert "admin:enterprise" in info.value.permissions
        assert not result.ok and "admin:enterprise" in result.missing
