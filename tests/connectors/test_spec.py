"""The request checks of _spec.py catch what the vendors' specifications do not allow."""

from __future__ import annotations

import json

import httpx
import pytest

from offboard.sandbox import Sandbox
from offboard_connectors.github import _ENTERPRISE_IDENTITY, _ENTERPRISE_MEMBER, _REMOVE_ENTERPRISE_MEMBER

from ._spec import check_github, check_google, check_graph, record, violations

SYSTEM = "github"  # (the module's sandbox fixture is not used: each test starts its own)


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        ("GET", "/orgs/acme/memberz", "", b"", "no such path"),
        ("POST", "/orgs/acme/members", "", b"", "has no POST"),
        ("GET", "/orgs/acme/members", "per_pag=100", b"", "unknown query parameter 'per_pag'"),
        (
            "DELETE",
            "/enterprises/e/copilot/billing/selected_users",
            "",
            b'{"selected_usernamez": ["a"]}',
            "no such field",
        ),
        ("PUT", "/orgs/acme/memberships/a", "", b'{"role": "owner"}', "is not one of"),
    ],
)
def test_github_rest_requests_outside_the_openapi_description_fail(method, path, query, body, expected):
    problems = check_github(method, path, query, body)
    assert problems and expected in " ".join(problems)


def test_github_rest_requests_the_description_allows_pass():
    assert check_github("GET", "/orgs/acme/members", "per_page=100&page=2", b"") == []
    assert (
        check_github("DELETE", "/orgs/acme/copilot/billing/selected_users", "", b'{"selected_usernames": ["a"]}') == []
    )
    disable = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    assert check_github("PATCH", "/scim/v2/enterprises/e/Users/1", "", json.dumps(disable).encode()) == []


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ('query { organization(login: "o") { samlIdentityProvidr { id } } }', {}, "Cannot query field"),
        ('query { enterprise(slug: "e") { ownerInfo { samlIdentityProvider { id } } } } }', {}, "Syntax Error"),
        (_ENTERPRISE_IDENTITY, {"enterprise": "e"}, "was not provided"),
        (_REMOVE_ENTERPRISE_MEMBER.replace("userId: $userId", "user: $userId"), {}, "is not defined by type"),
    ],
)
def test_github_graphql_outside_the_schema_fails(query, variables, expected):
    problems = check_github("POST", "/graphql", "", json.dumps({"query": query, "variables": variables}).encode())
    assert problems and expected in " ".join(problems)


def test_the_connectors_graphql_documents_are_valid():
    for query, variables in (
        (_ENTERPRISE_IDENTITY, {"enterprise": "e", "email": "a@b.example"}),
        (_ENTERPRISE_MEMBER, {"enterprise": "e", "login": "octocat"}),
        (_REMOVE_ENTERPRISE_MEMBER, {"enterpriseId": "E_1", "userId": "U_1"}),
    ):
        assert check_github("POST", "/graphql", "", json.dumps({"query": query, "variables": variables}).encode()) == []


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        ("GET", "/admin/directory/v1/userz/a@b.example", "", b"", "no such method"),
        ("PUT", "/admin/directory/v1/users/a@b.example", "", b'{"suspnded": true}', "suspnded: no such field"),
        ("GET", "/admin/directory/v1/users", "customer=my_customer&maxResult=5", b"", "'maxResult'"),
        ("GET", "/admin/datatransfer/v1/transfers", "customerID=C0", b"", "'customerID'"),
        ("POST", "/admin/directory/v1/users/a/signOut", "", b'{"all": true}', "takes no request body"),
    ],
)
def test_google_requests_outside_the_discovery_documents_fail(method, path, query, body, expected):
    problems = check_google(method, path, query, body)
    assert problems and expected in " ".join(problems)


def test_google_requests_the_discovery_documents_allow_pass():
    assert check_google("GET", "/admin/directory/v1/users", "customer=my_customer&maxResults=5&pageToken=x", b"") == []
    assert check_google("PUT", "/admin/directory/v1/users/a", "", b'{"suspended": true, "orgUnitPath": "/x"}') == []


def test_a_wrong_request_to_the_live_simulator_is_caught():
    """Through a real simulator: what the recorder saw is checked, including a misspelled field."""
    with Sandbox(people=8, seed=5, systems=("github", "google_workspace")) as sandbox:
        github, google = sandbox.sim("github"), sandbox.sim("google_workspace")
        sent_github, sent_google = record(github), record(google)
        settings = sandbox.config()["connectors"]["github"]["settings"]
        headers = {"Authorization": f"Bearer {github.token}"}
        with httpx.Client(base_url=settings["api_url"], headers=headers, trust_env=False) as client:
            client.get(f"/orgs/{github.org}/members", params={"per_page": 5})
            client.request("DELETE", f"/orgs/{github.org}/copilot/billing/selected_users", json={"users": ["x"]})
            client.post("/graphql", json={"query": 'query { organization(login: "x") { nonsense } }'})
        with httpx.Client(base_url=google.base_url, trust_env=False) as client:
            client.put("/admin/directory/v1/users/a@b.example", json={"suspnded": True})
        assert sent_github and sent_google
        found_github, found_google = violations("github", sent_github), violations("google_workspace", sent_google)
    assert any("users: no such field" in p for p in found_github)
    assert any("nonsense" in p for p in found_github)
    assert not any("/members:" in p for p in found_github), "a valid request was flagged"
    assert any("suspnded" in p for p in found_google)


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "expected"),
    [
        ("GET", "/v1.0/users/u1/mailboxSetings", "", b"", "no such path"),
        ("PUT", "/v1.0/users/u1/mailboxSettings", "", b"{}", "has no PUT"),
        ("GET", "/v1.0/users/u1/managedDevices", "$selct=id", b"", "unknown query parameter '$selct'"),
        (
            "PATCH",
            "/v1.0/users/u1/mailboxSettings",
            "",
            b'{"automaticRepliesSetting": {"status": "enabled"}}',
            "'enabled' is not one of",
        ),
        (
            "POST",
            "/v1.0/users/u1/mailFolders/inbox/messageRules",
            "",
            b'{"displayName": "x", "sequence": "1", "actions": {"forwardTo": []}}',
            "sequence: expected int",
        ),
        ("POST", "/v1.0/drives/d1/items/i1/invite", "", b'{"recipient": [{"email": "a@b.example"}]}', "no such"),
        ("POST", "/v1.0/deviceManagement/managedDevices/m1/retire", "", b'{"keepData": true}', "takes no request body"),
    ],
)
def test_graph_requests_outside_the_sdk_description_fail(method, path, query, body, expected):
    problems = check_graph(method, path, query, body)
    assert problems and expected in " ".join(problems)


def test_graph_requests_the_sdk_description_allows_pass():
    assert check_graph("GET", "/v1.0/users/u1/memberOf/microsoft.graph.group", "$select=id", b"") == []
    assert check_graph("DELETE", "/v1.0/groups/g1/members/u1/$ref", "", b"") == []
    assert (
        check_graph(
            "POST",
            "/v1.0/drives/d1/items/i1/invite",
            "",
            b'{"recipients": [{"email": "a@b.example"}], "roles": ["write"], "requireSignIn": true}',
        )
        == []
    )
    assert check_graph("GET", "/v1.0/users", "$top=5&$skiptoken=10", b"") == []
