"""A small OpenID Connect provider for the sign-in tests, served by uvicorn on a free local port.

It speaks the authorization code flow with PKCE (S256, checked with authlib's RFC 7636 helper) and
signs RS256 ID tokens with joserfc (authlib's JOSE library): discovery, ``/authorize`` (it signs in
``provider.user`` without a login form), ``/token`` (client_secret_basic) and ``/jwks``. Knobs
let a test make it misbehave: sign with a key it does not publish, send the wrong nonce or
audience, or an unverified email.
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


class Provider:
    """The provider's state: its client, its signed-in user, the codes it issued, and the knobs."""

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str):
        self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)
        self.rogue = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}, private=True)
        self.user = {"sub": "u-1", "email": "mgr@corp.example", "email_verified": True}
        self.knobs: dict[str, Any] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.issuer = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("redirect_uri") != self.redirect_uri:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if (
            q.get("response_type") != "code"
            or q.get("code_challenge_method") != "S256"
            or "openid" not in q.get("scope", "")
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": q["code_challenge"], "nonce": q.get("nonce"), "at": time.time()}
        return RedirectResponse(f"{self.redirect_uri}?{urlencode({'code': code, 'state': q.get('state', '')})}", 302)

    async def token(self, request: Request) -> Response:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if scheme != "Basic" or not secrets.compare_digest(given, expected):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        form = await request.form()
        grant = self.codes.pop(str(form.get("code")), None)
        if grant is None or form.get("redirect_uri") != self.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if create_s256_code_challenge(str(form.get("code_verifier"))) != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.knobs.get("aud", self.client_id),
            "iat": now,
            "exp": now + 300,
            "nonce": self.knobs.get("nonce", grant["nonce"]),
            **self.user,
        }
        key = self.rogue if self.knobs.get("rogue_key") else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token})

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})


class Running:
    """A provider served on a free port until ``stop()``."""

    def __init__(self, provider: Provider):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        provider.issuer = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.provider = provider
        self.server = uvicorn.Server(uvicorn.Config(provider.app(), log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test OpenID provider did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()
