"""Entra ID simulator: msal acquires a token; Graph behaves as documented."""

from __future__ import annotations

import msal
import pytest
import requests


@pytest.fixture(scope="module")
def graph(sandbox, secret):
    s = sandbox.config()["connectors"]["entra"]["settings"]
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify otherwise
    session.verify = s["ca_file"]
    app = msal.ConfidentialClientApplication(
        s["client_id"],
        client_credential=secret(s["client_secret"]),
        authority=f"{s['authority_url']}/{s['tenant_id']}",
        http_client=session,
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in token, token
    again = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert again["token_source"] == "cache"
    session.headers["Authorization"] = "Bearer " + token["access_token"]
    return session, s["graph_url"]


def _uid(graph, email):
    session, base = graph
    r = session.get(f"{base}/users", params={"$filter": f"mail eq '{email}'", "$select": "id,accountEnabled"})
    assert r.status_code == 200, r.text
    return r.json()["value"][0]["id"]


def test_wrong_secret_is_refused(sandbox):
    s = sandbox.config()["connectors"]["entra"]["settings"]
    session = requests.Session()
    session.trust_env = False
    session.verify = s["ca_file"]
    app = msal.ConfidentialClientApplication(
        s["client_id"],
        client_credential="wrong",
        authority=f"{s['authority_url']}/{s['tenant_id']}",
        http_client=session,
        instance_discovery=False,
    )
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_client" and "AADSTS7000215" in result["error_description"]


def test_disable_user_and_default_select(sandbox, graph):
    session, base = graph
    person = sandbox.company.people[2]
    uid = _uid(graph, person.email)
    plain = session.get(f"{base}/users/{person.email}").json()
    assert "accountEnabled" not in plain, "Graph does not return accountEnabled without $select"
    r = session.patch(f"{base}/users/{uid}", json={"accountEnabled": False})
    assert r.status_code == 204 and r.content == b""
    assert session.get(f"{base}/users/{uid}", params={"$select": "accountEnabled"}).json()["accountEnabled"] is False
    assert sandbox.account("entra", person.email)["accountEnabled"] is False
    missing = session.get(f"{base}/users/nobody@corp.example")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    assert "innerError" in missing.json()["error"]


def test_revoke_sessions_and_filters(sandbox, graph):
    session, base = graph
    person = sandbox.company.people[3]
    r = session.post(f"{base}/users/{person.email}/revokeSignInSessions")
    assert r.status_code == 200 and r.json()["value"] is True
    r = session.get(
        f"{base}/users",
        params={"$filter": f"userPrincipalName eq '{person.email.upper()}' or otherMails/any(m:m eq 'x@y')"},
        headers={"ConsistencyLevel": "eventual"},
    )
    assert [u["userPrincipalName"] for u in r.json()["value"]] == [person.email]
    r = session.get(f"{base}/users", params={"$filter": "endswith(mail,'@corp.example')"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_group_member_removal_with_and_without_ref(sandbox, graph):
    session, base = graph
    sim = sandbox.sim("entra")
    groups = {g["displayName"]: gid for gid, g in sim.groups.items()}
    victims = [i for i in sandbox.company.identities if "vpn-users" in i.groups and "entra" in i.systems][:2]
    assert len(victims) == 2
    gid = groups["vpn-users"]
    a, b = (_uid(graph, v.email) for v in victims)
    assert session.delete(f"{base}/groups/{gid}/members/{a}/$ref").status_code == 204
    again = session.delete(f"{base}/groups/{gid}/members/{a}/$ref")
    assert again.status_code == 404 and again.json()["error"]["code"] == "Request_ResourceNotFound"
    dup = session.post(
        f"{base}/groups/{gid}/members/$ref",
        json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{b}"},
    )
    assert dup.status_code == 400 and "already exist" in dup.json()["error"]["message"]
    # Without /$ref Graph deletes the user object itself.
    assert session.delete(f"{base}/groups/{gid}/members/{b}").status_code == 204
    assert session.get(f"{base}/users/{b}").status_code == 404
    assert sandbox.account("entra", b)["deleted"] is True
    dyn = session.delete(f"{base}/groups/{groups['all-staff']}/members/{a}/$ref")
    assert dyn.status_code == 400


def test_licenses_group_based_cannot_be_removed(sandbox, graph):
    session, base = graph
    ident = next(i for i in sandbox.company.identities if i.licenses_from_group and i.kind == "person")
    details = session.get(f"{base}/users/{ident.email}/licenseDetails").json()["value"]
    skus = {d["skuPartNumber"]: d["skuId"] for d in details}
    r = session.post(
        f"{base}/users/{ident.email}/assignLicense", json={"addLicenses": [], "removeLicenses": [skus["EMS"]]}
    )
    assert r.status_code == 400 and "inherited from a group" in r.json()["error"]["message"]
    r = session.post(
        f"{base}/users/{ident.email}/assignLicense", json={"addLicenses": [], "removeLicenses": [skus["SPE_E3"]]}
    )
    assert r.status_code == 200
    assert "SPE_E3" not in sandbox.account("entra", ident.email)["licenses"]


def test_batch_semantics(sandbox, graph):
    session, base = graph
    person = sandbox.company.people[5]
    uid = _uid(graph, person.email)
    items = [
        {
            "id": "1",
            "method": "PATCH",
            "url": f"/users/{uid}",
            "headers": {"Content-Type": "application/json"},
            "body": {"accountEnabled": False},
        },
        {"id": "2", "method": "POST", "url": f"/users/{uid}/revokeSignInSessions", "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/users/nobody@corp.example"},
        {"id": "4", "method": "GET", "url": f"/users/{uid}", "dependsOn": ["3"]},
    ]
    r = session.post(f"{base}/$batch", json={"requests": items})
    assert r.status_code == 200
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["1"]["status"] == 204 and by_id["2"]["status"] == 200 and by_id["3"]["status"] == 404
    assert by_id["4"]["status"] == 424
    assert sandbox.account("entra", uid)["accountEnabled"] is False
    too_many = [{"id": str(i), "method": "GET", "url": f"/users/{uid}"} for i in range(21)]
    assert session.post(f"{base}/$batch", json={"requests": too_many}).status_code == 400
    dup = [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]
    assert session.post(f"{base}/$batch", json={"requests": dup}).status_code == 400
    nobody = [{"id": "1", "method": "PATCH", "url": f"/users/{uid}", "body": {"accountEnabled": True}}]
    assert session.post(f"{base}/$batch", json={"requests": nobody}).json()["responses"][0]["status"] == 400


def test_throttling_inside_batch_and_outside(sandbox, graph):
    session, base = graph
    sim = sandbox.sim("entra")
    uid = _uid(graph, sandbox.company.people[6].email)
    old = sim.limits["ru"].count
    sim.limits["ru"].count = 4
    sim.limiter.reset()
    try:
        items = [{"id": str(i), "method": "GET", "url": f"/users/{uid}"} for i in range(8)]
        responses = session.post(f"{base}/$batch", json={"requests": items}).json()["responses"]
        throttled = [x for x in responses if x["status"] == 429]
        assert throttled and all(int(x["headers"]["Retry-After"]) >= 1 for x in throttled)
        r = session.get(f"{base}/users/{uid}")
        assert r.status_code == 429 and r.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
        assert r.json()["error"]["code"] == "TooManyRequests" and int(r.headers["Retry-After"]) >= 1
    finally:
        sim.limits["ru"].count = old
        sim.limiter.reset()


def test_permission_denied_and_lying(sandbox, graph):
    session, base = graph
    sim = sandbox.sim("entra")
    person = sandbox.company.people[8]
    sim.deny("User.EnableDisableAccount.All", "User.ReadWrite.All")
    try:
        r = session.patch(f"{base}/users/{person.email}", json={"accountEnabled": False})
        assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
    finally:
        sim.allow("User.EnableDisableAccount.All", "User.ReadWrite.All")
    with sim.knobs_set(lie_rate=1.0):
        assert session.patch(f"{base}/users/{person.email}", json={"accountEnabled": False}).status_code == 204
    assert sandbox.account("entra", person.email)["accountEnabled"] is True
    assert sim.log.entries(method="PATCH", contains=person.email)[-1].fault == "lie"
    admin = next(i for i in sandbox.company.identities if i.kind == "admin")
    assert session.patch(f"{base}/users/{admin.email}", json={"accountEnabled": False}).status_code == 403
