"""Slack simulator: WebClient and SCIMClient unmodified; ok:false errors; tier limits with Retry-After."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.scim import SCIMClient


@pytest.fixture(scope="module")
def slack(sandbox, secret):
    s = sandbox.config()["connectors"]["slack"]["settings"]
    return s, secret(s["token"])


def test_web_api(sandbox, slack):
    s, token = slack
    client = WebClient(token=token, base_url=s["api_url"])
    person = sandbox.company.people[1]
    user = client.users_lookupByEmail(email=person.email)["user"]
    assert user["profile"]["email"] == person.email
    assert client.admin_users_session_list(user_id=user["id"], team_id=user["team_id"])["active_sessions"]
    with pytest.raises(SlackApiError, match="invalid_arguments"):  # Slack: user_id and team_id go together
        client.admin_users_session_list(user_id=user["id"])
    assert client.admin_users_session_reset(user_id=user["id"])["ok"] is True
    assert sandbox.account("slack", person.email)["sessions"] == []
    with pytest.raises(SlackApiError) as err:
        client.users_lookupByEmail(email="nobody@corp.example")
    assert err.value.response.status_code == 200 and err.value.response["error"] == "users_not_found"
    with pytest.raises(SlackApiError) as err:
        WebClient(token="xoxp-" + secrets.token_hex(12), base_url=s["api_url"]).auth_test()
    assert err.value.response.status_code == 200 and err.value.response["error"] == "invalid_auth"
    owner = next(i for i in sandbox.company.identities if i.kind == "admin")
    owner_id = client.users_lookupByEmail(email=owner.email)["user"]["id"]
    with pytest.raises(SlackApiError, match="cannot_reset_primary_owner"):
        client.admin_users_session_reset(user_id=owner_id)
    assert client.chat_postMessage(channel="#it-offboarding", text="done")["ok"]


def test_missing_scope(sandbox, slack):
    s, token = slack
    sim = sandbox.sim("slack")
    sim.deny("admin.users:write")
    try:
        with pytest.raises(SlackApiError) as err:
            WebClient(token=token, base_url=s["api_url"]).admin_users_session_reset(user_id="U1")
        assert err.value.response["error"] == "missing_scope" and err.value.response["needed"] == "admin.users:write"
    finally:
        sim.allow("admin.users:write")


def test_tier_limit_429_retry_after_and_sdk_retry(sandbox, slack):
    s, token = slack
    sim = sandbox.sim("slack")
    person = sandbox.company.people[2]
    client = WebClient(token=token, base_url=s["api_url"])
    old = sim.limits["tier3"]
    sim.limits["tier3"] = type(old)(2, 60, 2)
    sim.limiter.reset()
    try:
        client.users_lookupByEmail(email=person.email)
        client.users_lookupByEmail(email=person.email)
        with pytest.raises(SlackApiError) as err:
            client.users_lookupByEmail(email=person.email)
        assert err.value.response.status_code == 429 and err.value.response["error"] == "ratelimited"
        assert int(err.value.response.headers["Retry-After"]) == 30  # 2 per minute: one token every 30 s
    finally:
        sim.limits["tier3"] = old
        sim.limiter.reset()
    retrying = WebClient(
        token=token, base_url=s["api_url"], retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)]
    )
    with sim.force(429, retry_after=0, count=1):
        assert retrying.users_lookupByEmail(email=person.email)["ok"]


def test_scim_v1_with_slack_sdk(sandbox, slack):
    s, token = slack
    scim = SCIMClient(token=token, base_url=s["scim_v1_url"])
    person = sandbox.company.people[3]
    found = scim.search_users(count=10, start_index=1, filter=f'email eq "{person.email}"')
    assert found.status_code == 200 and found.body["totalResults"] == 1
    uid = found.body["Resources"][0]["id"]
    patched = scim.patch_user(id=uid, partial_user={"active": False})
    assert patched.status_code == 200 and patched.body["active"] is False
    assert sandbox.account("slack", person.email)["active"] is False
    missing = scim.read_user("UNOPE")
    assert missing.status_code == 404 and missing.body["Errors"]["code"] == 404


def test_scim_v2_patch_delete_and_limits(sandbox, slack):
    s, token = slack
    http = httpx.Client(base_url=s["scim_url"], headers={"Authorization": f"Bearer {token}"}, trust_env=False)
    person = sandbox.company.people[6]
    r = http.get("Users", params={"filter": f'userName eq "{person.email.split("@")[0]}"'})
    uid = r.json()["Resources"][0]["id"]
    op = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert http.patch(f"Users/{uid}", json=op).json()["active"] is False
    assert http.delete(f"Users/{uid}").status_code == 204
    err = http.get("Users/UNOPE")
    assert err.status_code == 404 and err.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    sim = sandbox.sim("slack")
    stopped = time.monotonic()
    with sim.knobs_set(window_scale=1.0):
        sim.limiter.reset()
        sim.limiter.clock = lambda: stopped  # no refill during the burst, however slow the machine
        try:
            statuses = [http.patch(f"Users/{uid}", json=op).status_code for _ in range(22)]
        finally:
            sim.limiter.clock = time.monotonic
            sim.limiter.reset()
    assert statuses[:20] == [200] * 20 and statuses[20:] == [429, 429]  # PATCH /Users/<id>: burst 20
    assert http.get("Users", headers={"Authorization": "Bearer nope"}).status_code == 401
