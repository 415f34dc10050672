"""OpenID Connect sign-in for ``/tasks/`` (my open tasks), against a local provider started by the test."""

from __future__ import annotations

import secrets

import httpx
import pytest

from ..server._support import stop
from ._pages import HTML, MANAGER, serve
from ._provider import Provider, Running

CLIENT_ID, SECRET_ENV = "offboard-tasks", "OFFBOARD_TEST_OIDC_SECRET"


@pytest.fixture
def signin(make_company, tmp_path, monkeypatch, home):
    client_secret = secrets.token_urlsafe(24)
    monkeypatch.setenv(SECRET_ENV, client_secret)
    provider = Provider(CLIENT_ID, client_secret, "http://testserver/tasks/callback")
    running = Running(provider)
    oidc = {"issuer": provider.issuer, "client_id": CLIENT_ID, "client_secret": f"env:{SECRET_ENV}"}
    srv = serve(make_company, tmp_path, monkeypatch, server={"public_url": "http://testserver", "oidc": oidc})
    try:
        yield srv, provider
    finally:
        stop(srv)
        running.stop()


def sign_in(srv) -> httpx.Response:
    """Follow the flow as a browser would: offboard -> provider (a real HTTP server) -> offboard's callback."""
    start = srv.client.get("/tasks/", follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"] == "/tasks/login"
    login = srv.client.get("/tasks/login", follow_redirects=False)
    assert login.status_code == 303
    at_provider = httpx.get(login.headers["location"], follow_redirects=False)
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["location"].removeprefix("http://testserver")
    return srv.client.get(callback, follow_redirects=False, headers=HTML)


def test_a_signed_in_owner_sees_their_open_tasks_with_links_that_open_them(signin):
    srv, provider = signin
    done = sign_in(srv)
    assert done.status_code == 303 and done.headers["location"] == "/tasks/"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/tasks" in cookie
    mine = srv.client.get("/tasks/", headers=HTML)
    assert mine.status_code == 200 and f"Signed in as {MANAGER}" in mine.text
    titles = [r["title"] for r in srv.engine.store.tasks.listing(case_id=srv.extra["case"]) if r["owner"] == "manager"]
    assert titles and all(t in mine.text for t in titles)
    assert "Return laptop" not in mine.text  # IT's tasks are not the manager's
    href = mine.text.split('<a href="', 1)[1].split('"', 1)[0]
    assert href.startswith("http://testserver/tasks/t/")
    assert srv.client.get(href.removeprefix("http://testserver"), headers=HTML).status_code == 200


@pytest.mark.parametrize(
    ("knob", "status", "says"),
    [
        ({"rogue_key": True}, 400, "ID token was refused"),
        ({"nonce": "not-the-nonce"}, 400, "ID token was refused"),
        ({"aud": "someone-else"}, 400, "ID token was refused"),
    ],
)
def test_an_id_token_that_does_not_verify_signs_nobody_in(signin, knob, status, says):
    srv, provider = signin
    provider.knobs.update(knob)
    answer = sign_in(srv)
    assert answer.status_code == status and says in answer.text
    assert srv.client.get("/tasks/", follow_redirects=False).status_code == 303  # still not signed in


def test_an_unverified_email_or_a_forged_state_signs_nobody_in(signin):
    srv, provider = signin
    provider.user["email_verified"] = False
    assert sign_in(srv).status_code == 403
    provider.user["email_verified"] = True
    srv.client.get("/tasks/login", follow_redirects=False)
    forged = srv.client.get("/tasks/callback?code=abc&state=forged", headers=HTML)
    assert forged.status_code == 400 and "does not match" in forged.text
    srv.client.cookies.clear()
    stale = srv.client.get("/tasks/callback?code=abc&state=x")
    assert stale.status_code == 400 and stale.json()["error"] == "sign_in_expired"


def test_a_forged_session_cookie_is_not_a_session(signin):
    srv, _ = signin
    srv.client.cookies.set("offboard_session", "eyJwIjoic2Vzc2lvbiJ9.forged", path="/tasks")
    assert srv.client.get("/tasks/", follow_redirects=False).status_code == 303


def test_without_oidc_the_overview_says_to_use_the_links(make_company, tmp_path, monkeypatch, home):
    srv = serve(make_company, tmp_path, monkeypatch)
    try:
        answer = srv.client.get("/tasks/", headers=HTML)
        assert answer.status_code == 404 and "links in the reminders" in answer.text
    finally:
        stop(srv)


def test_an_unreachable_provider_says_so(signin):
    srv, provider = signin
    srv.app.state.oidc.issuer = "http://127.0.0.1:9"  # nothing listens on the discard port
    srv.app.state.oidc._discovery = None
    answer = srv.client.get("/tasks/login", headers=HTML)
    assert answer.status_code == 503 and "could not be reached" in answer.text
