"""GitHub simulator: routes and shapes checked against GitHub's OpenAPI description; rate limits."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from openapi_schema_validator import OAS30Validator

SPEC = json.loads((Path(__file__).parent / "data" / "github-openapi-subset.json").read_text())


def _inline(node, seen=()):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):  # (a property may itself be named "$ref")
            _, _, kind, name = ref.split("/", 3)
            if ref in seen:
                return {}
            return _inline(SPEC["components"][kind][name], seen + (ref,))
        return {k: _inline(v, seen) for k, v in node.items() if k != "discriminator"}  # oneOf still applies
    if isinstance(node, list):
        return [_inline(v, seen) for v in node]
    return node


def _schema(path: str, method: str, status: int):
    op = SPEC["paths"][path][method.lower()]
    resp = _inline(op["responses"][str(status)])
    content = resp.get("content") or {}
    media = content.get("application/json") or content.get("application/scim+json")
    return None if media is None else media["schema"]


@pytest.fixture(scope="module")
def gh(sandbox, secret):
    s = sandbox.config()["connectors"]["github"]["settings"]
    client = httpx.Client(
        base_url=s["api_url"],
        headers={
            "Authorization": f"Bearer {secret(s['token'])}",
            "User-Agent": "offboard-tests",
            "Accept": "application/vnd.github+json",
        },
        trust_env=False,
    )
    return client, s["org"]


def _check(client, method, url, spec_path, status, **kw):
    r = client.request(method, url, **kw)
    assert r.status_code == status, r.text
    assert str(status) in SPEC["paths"][spec_path][method.lower()]["responses"], (
        f"{status} not documented for {method} {spec_path}"
    )
    schema = _schema(spec_path, method, status)
    if schema is not None:
        OAS30Validator(schema).validate(r.json())
    for h in (
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
    ):
        assert h in r.headers
    return r


def test_served_routes_are_in_the_openapi_description(sandbox):
    for method, pattern in sandbox.sim("github").routes():
        if pattern == "/graphql":
            continue
        path = pattern.replace("{id}", "{scim_user_id}")
        assert method.lower() in SPEC["paths"][path], f"{method} {pattern}"


def test_rest_shapes_match_the_description(sandbox, gh):
    client, org = gh
    sim = sandbox.sim("github")
    members = [r for r in sim.members.values() if r["state"] == "active" and r["role"] == "member"]
    login = members[0]["login"]
    _check(client, "GET", f"/orgs/{org}/members", "/orgs/{org}/members", 200)
    _check(client, "GET", f"/orgs/{org}/members/{login}", "/orgs/{org}/members/{username}", 204)
    _check(client, "GET", f"/orgs/{org}/memberships/{login}", "/orgs/{org}/memberships/{username}", 200)
    _check(client, "GET", f"/orgs/{org}/outside_collaborators", "/orgs/{org}/outside_collaborators", 200)
    _check(client, "GET", f"/orgs/{org}/invitations", "/orgs/{org}/invitations", 200)
    found = _check(
        client, "GET", "/search/commits", "/search/commits", 200, params={"q": f"author:{login} org:{org}"}
    ).json()
    assert found["total_count"] == 2 and all(i["author"]["login"] == login for i in found["items"])
    assert client.get("/search/commits").status_code == 422  # q is required
    creds = _check(
        client,
        "GET",
        f"/orgs/{org}/credential-authorizations",
        "/orgs/{org}/credential-authorizations",
        200,
        params={"login": login},
    ).json()
    assert creds and all(c["login"] == login for c in creds)
    _check(
        client,
        "DELETE",
        f"/orgs/{org}/credential-authorizations/{creds[0]['credential_id']}",
        "/orgs/{org}/credential-authorizations/{credential_id}",
        204,
    )
    _check(
        client,
        "DELETE",
        f"/orgs/{org}/credential-authorizations/{creds[0]['credential_id']}",
        "/orgs/{org}/credential-authorizations/{credential_id}",
        404,
    )
    _check(
        client,
        "DELETE",
        f"/orgs/{org}/outside_collaborators/{login}",
        "/orgs/{org}/outside_collaborators/{username}",
        422,
    )
    _check(client, "DELETE", f"/orgs/{org}/memberships/{login}", "/orgs/{org}/memberships/{username}", 204)
    _check(client, "GET", f"/orgs/{org}/memberships/{login}", "/orgs/{org}/memberships/{username}", 404)
    assert sandbox.account("github", login)["member"] is False
    _check(
        client,
        "PUT",
        f"/orgs/{org}/memberships/{login}",
        "/orgs/{org}/memberships/{username}",
        200,
        json={"role": "member"},
    )
    assert sandbox.account("github", login)["state"] == "pending"
    _check(client, "GET", f"/users/{login}", "/users/{username}", 200)
    _check(client, "GET", f"/orgs/{org}", "/orgs/{org}", 200)
    _check(client, "GET", "/rate_limit", "/rate_limit", 200)
    inv = client.get(f"/orgs/{org}/invitations").json()
    if inv:
        _check(
            client, "DELETE", f"/orgs/{org}/invitations/{inv[0]['id']}", "/orgs/{org}/invitations/{invitation_id}", 204
        )


def test_emu_scim_shapes(sandbox, gh):
    client, _ = gh
    sim = sandbox.sim("github")
    ent = sim.enterprise
    base = f"/scim/v2/enterprises/{ent}/Users"
    rec = next(r for r in sim.members.values() if r["state"] == "active" and r["role"] == "member")
    found = _check(
        client,
        "GET",
        base,
        "/scim/v2/enterprises/{enterprise}/Users",
        200,
        params={"filter": f'userName eq "{rec["email"]}"'},
    ).json()
    assert found["totalResults"] == 1
    sid = found["Resources"][0]["id"]
    op = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    body = _check(
        client, "PATCH", f"{base}/{sid}", "/scim/v2/enterprises/{enterprise}/Users/{scim_user_id}", 200, json=op
    ).json()
    assert body["active"] is False and sandbox.account("github", rec["login"])["scim_active"] is False
    no_agent = client.get(base, headers={"User-Agent": ""})
    assert no_agent.status_code == 403


def test_graphql_external_identities(sandbox, gh):
    client, org = gh
    rec = next(r for r in sandbox.sim("github").members.values() if r["state"] == "active")
    query = """query($org:String!, $email:String!) { organization(login:$org) { samlIdentityProvider {
      externalIdentities(first: 10, userName: $email) { nodes { guid samlIdentity { nameId } user { login } } pageInfo { hasNextPage endCursor } } } } }"""
    r = client.post("/graphql", json={"query": query, "variables": {"org": org, "email": rec["email"]}})
    nodes = r.json()["data"]["organization"]["samlIdentityProvider"]["externalIdentities"]["nodes"]
    assert [n["user"]["login"] for n in nodes] == [rec["login"]]
    assert r.headers["x-ratelimit-resource"] == "graphql"


def test_primary_limit_then_reset(sandbox, gh):
    client, org = gh
    sim = sandbox.sim("github")
    old = sim.limits["primary"]
    sim.limits["primary"] = type(old)(3, 2)
    sim._window.clear()
    try:
        first = client.get(f"/orgs/{org}")
        assert first.headers["x-ratelimit-limit"] == "3" and first.headers["x-ratelimit-used"] == "1"
        client.get(f"/orgs/{org}")
        client.get(f"/orgs/{org}")
        over = client.get(f"/orgs/{org}")
        assert over.status_code in (403, 429) and over.headers["x-ratelimit-remaining"] == "0"
        assert "API rate limit exceeded" in over.json()["message"]
        time.sleep(max(int(over.headers["x-ratelimit-reset"]) - time.time(), 0) + 0.2)
        assert client.get(f"/orgs/{org}").status_code == 200
    finally:
        sim.limits["primary"] = old
        sim._window.clear()


def test_secondary_limit(sandbox, gh):
    client, org = gh
    sim = sandbox.sim("github")
    old = sim.limits["secondary"]
    sim.limits["secondary"] = type(old)(10, 60)  # 10 points: two writes at 5 points each
    sim.limiter.reset()
    try:
        statuses = [client.delete(f"/orgs/{org}/invitations/999").status_code for _ in range(3)]
        assert statuses[:2] == [404, 404] and statuses[2] in (403, 429)
        r = client.delete(f"/orgs/{org}/invitations/999")
        assert "secondary rate limit" in r.json()["message"]
        assert r.headers["x-ratelimit-remaining"] != "0"
    finally:
        sim.limits["secondary"] = old
        sim.limiter.reset()


def test_bad_credentials(sandbox):
    r = httpx.get(sandbox.url("github") + "/user", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["message"] == "Bad credentials"
