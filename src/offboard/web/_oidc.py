"""Optional OpenID Connect sign-in for ``/tasks/`` (my open tasks), for people who hold more than one task.

Configured under ``server.oidc``: ``issuer`` (its ``/.well-known/openid-configuration`` is read),
``client_id`` and ``client_secret`` (a reference). Sign-in is the authorization code flow with
PKCE, ``state`` and ``nonce``; the ID token's signature (the issuer's JWKS), issuer, audience,
expiry and nonce are checked with authlib's JOSE library (joserfc). The signed-in person is their
``email`` claim (refused when ``email_verified`` is false); the page lists the open tasks whose
owners' addresses include it, each with a fresh personal link. The session is a cookie signed
with the links key (``server.links_secret``), valid for 8 hours. Without ``server.oidc`` only
the per-task links work and ``/tasks/`` says so.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from ..checklist._links import LinkError, Links
from ..checklist._tasks import list_tasks, recipients
from ..config._logging import get_logger
from ..config._secrets import Secret, resolve_reference
from ..errors import ConfigError, SecretError
from ._auditor import HEADERS
from ._limits import rate_limited
from ._tasks_forms import PageRefused, html, refused
from ._tasks_html import local_due, tasks_overview

__all__ = ["OIDCSettings", "router", "settings_of"]

log = get_logger("offboard.oidc")
router = APIRouter(dependencies=[Depends(rate_limited)], include_in_schema=False)
SESSION = "offboard_session"
FLOW = "offboard_signin"
SESSION_HOURS = 8
DISCOVERY_SECONDS = 3600


@dataclass
class OIDCSettings:
    issuer: str
    client_id: str
    client_secret: Secret
    links: Links
    scopes: str = "openid email profile"
    _discovery: dict[str, Any] | None = None
    _fetched: float = 0.0

    def __repr__(self) -> str:
        return f"OIDCSettings(issuer={self.issuer!r}, client_id={self.client_id!r})"

    def discovery(self) -> dict[str, Any]:
        """The issuer's metadata (cached for an hour)."""
        if self._discovery is None or time.monotonic() - self._fetched > DISCOVERY_SECONDS:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = _get_json(url)
            if document.get("issuer") != self.issuer:
                raise PageRefused(
                    503, "bad_issuer", f"the identity provider names itself {document.get('issuer')!r}, not the issuer"
                )
            self._discovery, self._fetched = document, time.monotonic()
        return self._discovery


def _get_json(url: str, **kw: Any) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=10, **kw) if not kw.get("data") else httpx.post(url, timeout=10, **kw)
        response.raise_for_status()
        return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("identity provider unreachable or answered badly", url=url, error=type(exc).__name__)
        raise PageRefused(
            503, "provider_unreachable", "sign-in failed: the identity provider could not be reached; try again later"
        ) from None


def settings_of(server: Any, links: Links | None) -> OIDCSettings | None:
    """``server.oidc`` checked; None when sign-in is off. ConfigError naming the key when unusable."""
    raw = getattr(server, "oidc", None)
    if not raw:
        return None
    if links is None:
        raise ConfigError("server.oidc: sign-in needs server.links_secret (it signs the session cookie)")
    unknown = set(raw) - {"issuer", "client_id", "client_secret", "scopes"}
    if unknown:
        raise ConfigError(f"server.oidc: unknown key(s) {', '.join(sorted(unknown))}")
    issuer, client_id, ref = raw.get("issuer"), raw.get("client_id"), raw.get("client_secret")
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        raise ConfigError("server.oidc.issuer: give the issuer URL (https://...)")
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError("server.oidc.client_id: required")
    if not isinstance(ref, str) or not ref.startswith(("env:", "file:")):
        raise ConfigError("server.oidc.client_secret: a reference (env:NAME or file:PATH), never the secret itself")
    try:
        secret = resolve_reference(ref)
    except SecretError as exc:
        raise ConfigError(f"server.oidc.client_secret: {exc}") from None
    return OIDCSettings(issuer, client_id, secret, links, str(raw.get("scopes") or "openid email profile"))


def _oidc(request: Request) -> OIDCSettings:
    found = getattr(request.app.state, "oidc", None)
    if found is None:
        raise PageRefused(
            404,
            "sign_in_off",
            "sign-in is not configured here (server.oidc); open your tasks from the links in the reminders",
        )
    return found


def _callback_url(request: Request) -> str:
    links = request.app.state.links
    return (links.public_url or str(request.base_url).rstrip("/")) + "/tasks/callback"


def _cookie(response: Response, name: str, value: str, seconds: int, request: Request) -> None:
    secure = _callback_url(request).startswith("https://")
    response.set_cookie(name, value, max_age=seconds, httponly=True, secure=secure, samesite="lax", path="/tasks")


@router.get("/tasks/")
def my_tasks(request: Request) -> Response:
    try:
        oidc = _oidc(request)
        services = request.app.state.services
        now = services.clock()
        token = request.cookies.get(SESSION, "")
        try:
            email = oidc.links.check(token, "session", now).subject if token else None
        except LinkError:
            email = None
        if email is None:
            return RedirectResponse("/tasks/login", status_code=303, headers=HEADERS)
        return html(tasks_overview(email, _mine(services.engine, oidc.links, email, now)))
    except PageRefused as exc:
        return refused(request, exc)


def _mine(engine: Any, links: Links, email: str, now: datetime) -> list[dict[str, Any]]:
    """Open tasks whose owner's addresses include ``email``, each with a fresh link."""
    rows = []
    people: dict[str, dict[str, Any]] = {}
    for task in list_tasks(engine.store, now):
        if task["case"] not in people:
            row = engine.store.tasks.get(task["case"], task["task"])
            people[task["case"]] = json.loads(row["person"] or "{}") if row else {}
        person = people[task["case"]]
        if email in [r.lower() for r in recipients(engine.config, task["owner"], person)]:
            due = datetime.fromisoformat(task["due_at"].replace("Z", "+00:00"))
            rows.append(
                {
                    "title": task["title"],
                    "person": person.get("name") or task["person"],
                    "due": local_due(due, task["timezone"]),
                    "href": links.task_url(task["case"], task["task"], email, now),
                }
            )
    return rows


@router.get("/tasks/login")
async def login(request: Request) -> Response:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    try:
        oidc = _oidc(request)
        metadata = await run_in_threadpool(oidc.discovery)
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        query = {
            "response_type": "code",
            "client_id": oidc.client_id,
            "redirect_uri": _callback_url(request),
            "scope": oidc.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        response = RedirectResponse(f"{metadata['authorization_endpoint']}?{urlencode(query)}", 303, headers=HEADERS)
        flow = json.dumps([state, nonce, verifier], separators=(",", ":"))
        now = request.app.state.services.clock()
        cookie = oidc.links.token("signin", flow, "-", now, ttl=timedelta(minutes=10))
        _cookie(response, FLOW, cookie, 600, request)
        return response
    except PageRefused as exc:
        return refused(request, exc)


@router.get("/tasks/callback")
async def callback(request: Request) -> Response:
    try:
        oidc = _oidc(request)
        now = request.app.state.services.clock()
        q = request.query_params
        if q.get("error"):
            raise PageRefused(400, "sign_in_refused", f"the identity provider refused the sign-in: {q['error'][:100]}")
        try:
            state, nonce, verifier = json.loads(oidc.links.check(request.cookies.get(FLOW, ""), "signin", now).subject)
        except (LinkError, ValueError):
            raise PageRefused(
                400, "sign_in_expired", "the sign-in took too long or was started elsewhere; try again"
            ) from None
        if not secrets.compare_digest(q.get("state", ""), state) or not q.get("code"):
            raise PageRefused(400, "sign_in_failed", "the sign-in answer does not match the request; try again")
        email = await run_in_threadpool(_exchange, oidc, q["code"], verifier, nonce, _callback_url(request), now)
        response = RedirectResponse("/tasks/", 303, headers=HEADERS)
        session = oidc.links.token("session", email, email, now, ttl=timedelta(hours=SESSION_HOURS))
        _cookie(response, SESSION, session, SESSION_HOURS * 3600, request)
        response.delete_cookie(FLOW, path="/tasks")
        log.info("signed in", email=email)
        return response
    except PageRefused as exc:
        return refused(request, exc)


def _exchange(oidc: OIDCSettings, code: str, verifier: str, nonce: str, redirect_uri: str, now: datetime) -> str:
    """The verified email of the ID token the code buys."""
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    metadata = oidc.discovery()
    tokens = _get_json(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
        auth=(oidc.client_id, oidc.client_secret.reveal()),
    )
    keys = KeySet.import_key_set(_get_json(metadata["jwks_uri"]))  # type: ignore[arg-type]
    try:
        token = jwt.decode(str(tokens.get("id_token", "")), keys)
        jwt.JWTClaimsRegistry(
            now=int(time.time()),  # the provider's clock is the wall clock, whatever clock the app runs on
            leeway=60,
            iss={"essential": True, "value": oidc.issuer},
            aud={"essential": True, "value": oidc.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        log.warning("ID token refused", error=type(exc).__name__)
        raise PageRefused(400, "sign_in_failed", f"the ID token was refused ({type(exc).__name__})") from None
    email = str(token.claims.get("email") or "").strip().lower()
    if not email or token.claims.get("email_verified") is False:
        raise PageRefused(403, "no_email", "the identity provider gave no verified email address")
    return email
