"""SCIM app profiles: the contract kit against the SCIM simulator behaving as each application, and what
each profile's DELETE and ``active: false`` do (reversible or destructive)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from offboard import Action, ActionKind
from offboard.errors import RateLimited
from offboard.sandbox._scim_profiles import BEHAVIOURS
from offboard_connectors._scim_profiles import PROFILES, UNCONFIRMED
from offboard_connectors.scim import ScimConnector

from ._spec import record, violations
from ._support import SandboxContract, raw_client

SYSTEM = "scim"
DOC = Path(__file__).resolve().parents[2] / "docs" / "connectors" / "scim-profiles.md"


@pytest.fixture(scope="module")
def sandbox():
    """The SCIM simulator with enough people for every profile's run of the contract (fresh people per test)."""
    from offboard.sandbox import Sandbox

    sb = Sandbox(people=320, seed=23, systems=(SYSTEM,)).start()
    sent = record(sb.sim(SYSTEM))
    try:
        yield sb
        found = violations(SYSTEM, sent)
    finally:
        sb.stop()
    if found:
        pytest.fail(f"{len(found)} request(s) the {SYSTEM} specification does not allow:\n" + "\n".join(found[:20]))


@pytest.fixture
def sim(sandbox):
    simulator = sandbox.sim(SYSTEM)
    yield simulator
    simulator.use_profile("generic")
    simulator.knobs.rate_limits = True


def _connector(sandbox_settings: dict, profile: str, **extra) -> ScimConnector:
    return ScimConnector("app", {**sandbox_settings, "profile": profile, **extra})


class TestEveryProfile(SandboxContract):
    """The contract kit, once per profile, against the simulator configured with that profile's behaviour."""

    connector_class = ScimConnector
    instance = "app"

    @pytest.fixture(params=sorted(PROFILES))
    def profile(self, request, sim):
        sim.use_profile(request.param)
        sim.knobs.rate_limits = False  # the kit calls the connector directly: no engine to pace it
        return request.param

    @pytest.fixture
    def connector(self, sandbox_settings, profile):
        connector = _connector(sandbox_settings, profile)
        yield connector
        connector.close()

    @pytest.fixture
    def target_state(self, sim):
        return lambda account: {k: v for k, v in (sim.account(account.id) or {}).items() if k != "meta"}

    def test_profile_is_in_effect(self, connector, sim, profile):
        assert connector.profile.name == profile and sim.behaviour.name == profile


# -- what each profile's steps do ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_simulator_follows_what_the_connector_believes(name):
    """The connector's table and the simulator's reading of the same vendor pages agree."""
    profile, behaviour = PROFILES[name], BEHAVIOURS[name]
    assert (profile.delete == "reversible") == (behaviour.delete == "deactivate")
    assert (profile.deactivate == "destructive") == (behaviour.deactivate == "remove")
    if profile.bulk is False:
        assert behaviour.bulk is False
    if profile.patch is False:
        assert behaviour.patch is False


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_delete_is_classified_and_behaves_as_the_profile_says(name, sandbox_settings, sandbox_people, sim):
    sim.use_profile(name)
    sim.knobs.rate_limits = False
    connector = _connector(sandbox_settings, name)
    person = next(sandbox_people).person
    account = connector.discover(person)[0]
    delete = Action(ActionKind.DELETE_ACCOUNT, account)
    receipt = connector.apply(delete)
    assert receipt.changed and connector.verify(delete, receipt).ok
    assert connector.is_destructive(ActionKind.DELETE_ACCOUNT) is (PROFILES[name].delete != "reversible")
    if PROFILES[name].delete == "reversible":  # Slack: DELETE deactivates; undo switches the user back on
        assert sim.account(account.id)["active"] is False
        connector.undo(receipt)
        assert sim.account(account.id)["active"] is True
    else:
        assert sim.account(account.id) is None
    connector.close()


def test_an_app_where_active_false_removes_the_user_makes_disable_destructive(sandbox_settings, sandbox_people, sim):
    """GitHub organization SCIM: active:false removes the user and its identity. The simulator can do it; a
    connector told so by its profile classifies disable as destructive."""
    sim.use_profile("active-removes")
    connector = _connector(sandbox_settings, "generic")
    account = connector.discover(next(sandbox_people).person)[0]
    connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
    assert sim.account(account.id) is None  # gone, not suspended: no undo can bring it back
    assert connector.is_destructive(ActionKind.DISABLE_ACCOUNT) is False  # generic trusts RFC 7644 ...
    connector.close()
    from dataclasses import replace

    PROFILES["test-org-scim"] = replace(PROFILES["generic"], name="test-org-scim", deactivate="destructive")
    try:  # ... a profile that documents it says otherwise
        strict = _connector(sandbox_settings, "test-org-scim")
        assert strict.is_destructive(ActionKind.DISABLE_ACCOUNT) is True
        strict.close()
    finally:
        del PROFILES["test-org-scim"]


def test_without_patch_the_connector_uses_put_for_users_and_groups(sandbox_settings, sandbox_people, sim):
    sim.use_profile("generic", patch=False)
    sim.log.clear()
    connector = _connector(sandbox_settings, "generic")
    account = connector.discover(next(sandbox_people).person)[0]
    assert sim.account(account.id)["groups"], "the sandbox person should hold groups"
    for kind in (ActionKind.DISABLE_ACCOUNT, ActionKind.REMOVE_MEMBERSHIPS):
        action = Action(kind, account)
        assert connector.apply(action).changed and connector.verify(action).ok
    assert sim.account(account.id)["active"] is False and sim.account(account.id)["groups"] == []
    patches = sim.log.entries(method="PATCH")
    assert all(e.status == 501 for e in patches)  # ServiceProviderConfig said no PATCH: none, or refused
    assert sim.log.entries(method="PUT")
    connector.close()


def test_the_simulator_refuses_what_the_profile_does_not_support(sandbox, sim):
    sim.use_profile("generic", patch=False, bulk=False)
    settings = sim.connector_settings(lambda name, value: value)
    with raw_client(settings["base_url"] + "/", settings["token"]) as client:
        config = client.get("ServiceProviderConfig").json()
        assert config["patch"]["supported"] is False and config["bulk"]["supported"] is False
        op = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": []}
        refused = client.patch("Users/anything", json=op)
        assert refused.status_code == 501 and refused.json()["status"] == "501"
        assert client.post("Bulk", json={}).status_code == 501


def test_a_profile_rate_limit_answers_429(sandbox_settings, sandbox_people, sim):
    """Zoom: 1 request/s per account; the simulator answers the second quick request with 429 + Retry-After."""
    sim.use_profile("zoom")
    sim.limiter.reset()
    connector = _connector(sandbox_settings, "zoom")
    with pytest.raises(RateLimited) as info:
        for _ in range(3):
            connector.check()
    assert info.value.retry_after and info.value.retry_after >= 1
    assert ScimConnector.rate_for(connector.settings) == 1.0  # the engine paces this instance at the same rate
    connector.close()


def test_an_unknown_profile_is_refused_naming_the_known_ones(sandbox_settings):
    with pytest.raises(ValidationError, match="unknown SCIM profile 'jira'; known: 1password, atlassian"):
        ScimConnector("app", {**sandbox_settings, "profile": "jira"})


def test_the_docs_page_lists_every_profile_with_its_sources():
    text = DOC.read_text()
    for name, profile in PROFILES.items():
        assert f"`{name}`" in text, f"{name} missing from {DOC.name}"
        for fact, source in profile.sources.items():
            assert source == UNCONFIRMED or source in text, f"{name}.{fact}: {source} not cited in {DOC.name}"
    assert re.search(r"unconfirmed", text)


def test_sources_are_vendor_pages_or_unconfirmed():
    for profile in PROFILES.values():
        for fact, source in profile.sources.items():
            assert source == UNCONFIRMED or httpx.URL(source).scheme == "https", (profile.name, fact)
