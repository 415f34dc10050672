"""A simulated identity provider acting as an SSF transmitter, written from the specifications alone.

It publishes ``/.well-known/ssf-configuration`` and a JWKS on 127.0.0.1, accepts stream creation
(bearer-authenticated), and signs SETs with PyJWT; ``rotate()`` replaces its signing key.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

RISC = "https://schemas.openid.net/secevent/risc/event-type/"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"


def new_key() -> tuple[Any, str]:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), uuid.uuid4().hex[:12]


class IdentityProvider:
    """An SSF transmitter on a local port."""

    def __init__(self, management_token: str):
        self.management_token = management_token
        self.key, self.kid = new_key()
        self.streams: list[dict[str, Any]] = []
        self.jwks_fetches = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                if self.path == "/.well-known/ssf-configuration/tenant1":
                    return self._json(200, idp.configuration())
                if self.path == "/tenant1/jwks":
                    idp.jwks_fetches += 1
                    return self._json(200, idp.jwks())
                if self.path == "/tenant1/ssf/stream":
                    if not self._authorized():
                        return self._json(401, {})
                    return self._json(200, idp.streams)
                self._json(404, {})

            def do_POST(self) -> None:
                if self.path != "/tenant1/ssf/stream":
                    return self._json(404, {})
                if not self._authorized():
                    return self._json(401, {})
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                stream = {
                    "stream_id": uuid.uuid4().hex,
                    "iss": idp.issuer,
                    "aud": body["delivery"]["endpoint_url"],
                    "delivery": body["delivery"],
                    "events_requested": body.get("events_requested", []),
                    "events_delivered": body.get("events_requested", []),
                }
                idp.streams.append(stream)
                self._json(201, stream)

            def _authorized(self) -> bool:
                return self.headers.get("authorization") == f"Bearer {idp.management_token}"

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.issuer = f"{self.base}/tenant1"  # an issuer with a path component
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def configuration(self) -> dict[str, Any]:
        return {
            "spec_version": "1_0",
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks",
            "delivery_methods_supported": ["urn:ietf:rfc:8935"],
            "configuration_endpoint": f"{self.issuer}/ssf/stream",
        }

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def rotate(self) -> None:
        self.key, self.kid = new_key()

    def set(
        self,
        event: str,
        email: str,
        *,
        audience: str,
        key: Any = None,
        kid: str | None = None,
        issuer: str | None = None,
        typ: str = "secevent+jwt",
        **claims: Any,
    ) -> str:
        """A signed SET about ``email`` (``key``/``kid``/``issuer`` override what a genuine one carries)."""
        payload = {
            "iss": issuer or self.issuer,
            "aud": audience,
            "jti": uuid.uuid4().hex,
            "iat": int(time.time()),
            "sub_id": {"format": "email", "email": email},
            "events": {event: {}},
            **claims,
        }
        headers = {"typ": typ, "kid": kid or self.kid}
        body = json.dumps(payload).encode()  # PyJWS: any claims, even ones PyJWT's encode() would refuse
        return jwt.PyJWS().encode(body, key or self.key, algorithm="RS256", headers=headers)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
