"""Generic SCIM 2.0 simulator: scim2-tester passes; PATCH active, filter, knobs."""

from __future__ import annotations

import httpx
import pytest
from scim2_client.client import BaseSyncSCIMClient
from scim2_tester import check_server


class _HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client over httpx (its own engine needs the httpx2 package)."""

    def __init__(self, client: httpx.Client, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url, base = self.client.build_request("GET", endpoint).url, self.client.base_url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port) and url.raw_path.startswith(
            base.raw_path
        )

    def _parse_json(self, response):
        return response.json()

    def request(self, method: str, url: str, **kwargs):
        return self.client.request(method, url, **kwargs)


@pytest.fixture(scope="module")
def http(sandbox, secret):
    s = sandbox.config()["connectors"]["scim"]["settings"]
    with httpx.Client(
        base_url=s["base_url"] + "/", headers={"Authorization": f"Bearer {secret(s['token'])}"}, trust_env=False
    ) as client:
        yield client


def test_scim2_tester_passes(sandbox, http):
    client = _HttpxSCIMClient(http)
    client.discover()
    # conformance, not throttling or paging, is under test here (scim2-tester reads only first pages)
    with sandbox.sim("scim").knobs_set(rate_limits=False, page_cap=0):
        results = check_server(client)
    failed = [(r.title, r.reason) for r in results if r.status.name not in ("SUCCESS", "SKIPPED")]
    assert results and not failed


def test_deactivate_filter_and_errors(sandbox, http):
    sandbox.sim("scim").limiter.reset()
    person = next(i for i in sandbox.company.identities if "scim" in i.systems and i.kind == "person")
    found = http.get("Users", params={"filter": f'userName eq "{person.email.upper()}"'}).json()
    assert found["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"] and found["totalResults"] == 1
    uid = found["Resources"][0]["id"]
    op = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    sim = sandbox.sim("scim")
    with sim.knobs_set(lie_rate=1.0):
        assert http.patch(f"Users/{uid}", json=op).status_code in (200, 204)
    assert sandbox.account("scim", person.email)["active"] is True  # the lie: acknowledged, not applied
    assert http.patch(f"Users/{uid}", json=op).status_code in (200, 204)
    assert sandbox.account("scim", person.email)["active"] is False
    assert http.delete(f"Users/{uid}").status_code == 204
    gone = http.get(f"Users/{uid}")
    assert gone.status_code == 404 and gone.json()["status"] == "404"
    assert http.get("Users", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_rate_limit_answers_429_with_retry_after(sandbox, http):
    sim = sandbox.sim("scim")
    old = sim.limits["requests"]
    sim.limits["requests"] = type(old)(2, 60, 2)
    sim.limiter.reset()
    try:
        codes = [http.get("Users", params={"count": 1}) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert int(codes[2].headers["Retry-After"]) == 30 and codes[2].json()["status"] == "429"
    finally:
        sim.limits["requests"] = old
        sim.limiter.reset()


def test_the_sandbox_starts_the_scim_app_as_a_profile():
    """`offboard sandbox up --scim-profile slack`: the simulator behaves as Slack and the config says so."""
    from offboard.sandbox import Sandbox

    sb = Sandbox(people=5, systems=("scim",), scim_profile="slack")
    assert sb.sim("scim").behaviour.delete == "deactivate"
    sb.start()
    try:
        assert sb.config()["connectors"]["scim"]["settings"]["profile"] == "slack"
    finally:
        sb.stop()
    with pytest.raises(ValueError, match="unknown SCIM profile 'jira'; known: 1password, active-removes"):
        Sandbox(people=5, systems=("scim",), scim_profile="jira")


def test_sandbox_up_refuses_an_unknown_scim_profile():
    from click.testing import CliRunner

    from offboard.cli._sandbox import sandbox

    result = CliRunner().invoke(sandbox, ["up", "--people", "3", "--scim-profile", "jira"])
    assert result.exit_code == 2 and "unknown SCIM profile 'jira'" in result.output
