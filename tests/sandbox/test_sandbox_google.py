"""Google Workspace simulator: the real SDK, the shipped discovery document, batch and quota errors."""

from __future__ import annotations

import json
import os
import re

import google_auth_httplib2
import googleapiclient
import httplib2
import pytest
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from offboard.sandbox import make_company
from offboard.sandbox._google import GoogleWorkspace

SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.user.security",
    "https://www.googleapis.com/auth/admin.directory.group.member",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.datatransfer",
]
DOCS = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents")


def _discovery_routes() -> set[tuple[str, str]]:
    routes = set()
    names = (
        "admin.directory_v1.json",
        "admin.datatransfer_v1.json",
        "gmail.v1.json",
        "licensing.v1.json",
        "vault.v1.json",
    )
    for name in names:
        with open(os.path.join(DOCS, name)) as f:
            doc = json.load(f)
        if name.startswith("admin."):  # the simulator serves Google's batch endpoint of the Admin SDK
            routes.add(("POST", "/" + doc["batchPath"]))

        def walk(resources, doc=doc):
            for res in resources.values():
                for m in res.get("methods", {}).values():
                    path = "/" + doc["servicePath"] + m.get("flatPath", m["path"])
                    routes.add((m["httpMethod"], re.sub(r"\{[^}]+\}", "{}", path)))
                walk(res.get("resources", {}))

        walk(doc["resources"])
    return routes


def test_every_route_exists_in_the_shipped_discovery_document():
    known = _discovery_routes()
    served = GoogleWorkspace(make_company(2)).routes()
    served = [(m, p) for m, p in served if p != "/token"]  # the OAuth token endpoint is not part of the Admin SDK
    assert served
    for method, pattern in served:
        assert (method, re.sub(r"\{[^}]+\}", "{}", pattern)) in known, (
            f"{method} {pattern} is not in the discovery document"
        )


@pytest.fixture(scope="module")
def google(sandbox, secret):
    s = sandbox.config()["connectors"]["google_workspace"]["settings"]
    info = json.loads(secret(s["service_account"]))
    creds = service_account.Credentials.from_service_account_info(info, scopes=SCOPES, subject=s["subject"])
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http())
    svc = build(
        "admin", "directory_v1", http=http, static_discovery=True, client_options={"api_endpoint": s["api_url"]}
    )
    transfer = build(
        "admin", "datatransfer_v1", http=http, static_discovery=True, client_options={"api_endpoint": s["api_url"]}
    )
    return svc, transfer, http, s["api_url"]


def test_single_calls(sandbox, google):
    svc, _, _, _ = google
    person = sandbox.company.people[4]
    user = svc.users().get(userKey=person.email).execute()
    assert user["primaryEmail"] == person.email and user["suspended"] is False
    assert svc.users().update(userKey=person.email, body={"suspended": True}).execute()["suspended"] is True
    assert svc.users().signOut(userKey=person.email).execute() == ""
    assert svc.verificationCodes().invalidate(userKey=person.email).execute() == ""
    state = sandbox.account("google_workspace", person.email)
    assert state["suspended"] is True and state["suspensionReason"] == "ADMIN" and state["sessions"] == 0
    found = svc.users().list(customer="my_customer", query=f"email:{person.email}").execute()["users"]
    assert [u["id"] for u in found] == [user["id"]]
    with pytest.raises(HttpError) as err:
        svc.users().get(userKey="nobody@corp.example").execute()
    assert err.value.resp.status == 404 and err.value.error_details[0]["reason"] == "notFound"


def test_batch_of_security_calls(sandbox, google):
    svc, _, http, api = google
    ident = next(
        i for i in sandbox.company.identities if i.oauth_apps and i.app_passwords and "google_workspace" in i.systems
    )
    results = {}
    batch = BatchHttpRequest(
        callback=lambda rid, resp, exc: results.__setitem__(rid, (resp, exc)), batch_uri=api + "batch"
    )
    for client_id, _ in ident.oauth_apps:
        batch.add(svc.tokens().delete(userKey=ident.email, clientId=client_id))
    asps = svc.asps().list(userKey=ident.email).execute()["items"]
    for asp in asps:
        batch.add(svc.asps().delete(userKey=ident.email, codeId=asp["codeId"]))
    batch.add(svc.tokens().delete(userKey=ident.email, clientId="not-a-client"))
    batch.execute(http=http)
    errors = [exc for _, exc in results.values() if exc is not None]
    assert len(results) == len(ident.oauth_apps) + len(asps) + 1
    assert len(errors) == 1 and errors[0].resp.status == 404
    state = sandbox.account("google_workspace", ident.email)
    assert state["tokens"] == [] and state["asps"] == []
    assert sandbox.sim("google_workspace").log.entries(contains="/tokens/")[-1].batch


def test_group_membership_and_transfer(sandbox, google):
    svc, transfer, _, _ = google
    a, b = [i for i in sandbox.company.identities if i.kind == "person" and "google_workspace" in i.systems][10:12]
    groups = svc.groups().list(userKey=a.email).execute()["groups"]
    assert {g["name"] for g in groups} == set(a.groups)
    svc.members().delete(groupKey=groups[0]["email"], memberKey=a.email).execute()
    assert groups[0]["email"] not in sandbox.account("google_workspace", a.email)["groups"]
    sim = sandbox.sim("google_workspace")
    sim.transfer_seconds = 0
    ua, ub = (svc.users().get(userKey=x.email).execute()["id"] for x in (a, b))
    files = sandbox.account("google_workspace", a.email)["drive_files"]
    body = {
        "oldOwnerUserId": ua,
        "newOwnerUserId": ub,
        "applicationDataTransfers": [
            {
                "applicationId": "55656082996",
                "applicationTransferParams": [{"key": "PRIVACY_LEVEL", "value": ["PRIVATE", "SHARED"]}],
            }
        ],
    }
    job = transfer.transfers().insert(body=body).execute()
    assert transfer.transfers().get(dataTransferId=job["id"]).execute()["overallTransferStatusCode"] == "completed"
    assert sandbox.account("google_workspace", a.email)["drive_files"] == 0
    assert sandbox.account("google_workspace", b.email)["drive_files"] >= files


def test_quota_is_403_user_rate_limit_exceeded(sandbox, google):
    svc, _, _, _ = google
    sim = sandbox.sim("google_workspace")
    person = sandbox.company.people[0]
    old = sim.limits["user"]
    sim.limits["user"] = type(old)(3, 60)
    sim.limiter.reset()
    try:
        codes = []
        for _ in range(5):
            try:
                svc.users().get(userKey=person.email).execute()
                codes.append(200)
            except HttpError as err:
                codes.append(err.resp.status)
                assert err.error_details[0]["reason"] == "userRateLimitExceeded"
        assert codes == [200, 200, 200, 403, 403]
    finally:
        sim.limits["user"] = old
        sim.limiter.reset()
    with sim.force(429, count=1):
        with pytest.raises(HttpError) as err:
            svc.users().get(userKey=person.email).execute()
    assert err.value.resp.status == 429
    # googleapiclient retries 403 userRateLimitExceeded itself when asked to
    with sim.force(403, retry_after=0, count=1):
        assert svc.users().get(userKey=person.email).execute(num_retries=2)["primaryEmail"] == person.email


def test_unauthorized_subject_gets_no_token(sandbox, secret):
    s = sandbox.config()["connectors"]["google_workspace"]["settings"]
    info = json.loads(secret(s["service_account"]))
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=SCOPES, subject=sandbox.company.people[1].email
    )
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http())
    svc = build(
        "admin", "directory_v1", http=http, static_discovery=True, client_options={"api_endpoint": s["api_url"]}
    )
    from google.auth.exceptions import RefreshError

    with pytest.raises(RefreshError, match="unauthorized_client"):
        svc.users().get(userKey=sandbox.company.people[1].email).execute()
