"""A push receiver written only against the specifications (RFC 8935, RFC 8417, SSF 1.0), verifying with PyJWT.

It shares no code with offboard: it reads the transmitter's JWKS as JSON, verifies each SET with
PyJWT (offboard signs with joserfc), and answers as RFC 8935 says: 202 for a SET it accepts,
400 ``{"err", "description"}`` for one it refuses, and 503 while the test has it "down".
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt

SET_TYPE = "secevent+jwt"


def verify_set(token: str, jwks: dict[str, Any], *, issuer: str, audience: str) -> dict[str, Any]:
    """Verify a SET by the specs alone: explicit typ, a key from the JWKS by kid, iss, aud, no sub, no exp."""
    header = jwt.get_unverified_header(token)
    if header.get("typ") != SET_TYPE:
        raise ValueError(f"typ is {header.get('typ')!r}, not {SET_TYPE}")
    keys = {k["kid"]: jwt.PyJWK.from_dict(k) for k in jwks["keys"]}
    key = keys[header["kid"]]
    claims = jwt.decode(
        token,
        key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=issuer,
        options={"require": ["iss", "iat", "jti", "aud"], "verify_exp": False},
    )
    if "sub" in claims or "exp" in claims:
        raise ValueError("an SSF SET carries neither sub nor exp")
    if "sub_id" not in claims or len(claims["events"]) != 1:
        raise ValueError("an SSF SET has a sub_id and one event")
    return claims


class PushReceiver:
    """An HTTP endpoint on 127.0.0.1 that takes pushed SETs; ``down`` makes it answer 503."""

    def __init__(self, *, issuer: str, audience: str, authorization: str | None = None):
        self.issuer, self.audience, self.authorization = issuer, audience, authorization
        self.jwks: dict[str, Any] = {"keys": []}
        self.down = False
        self.received: list[tuple[float, dict[str, Any], str]] = []  # (monotonic time, claims, raw token)
        self.refused: list[tuple[int, str]] = []
        self.attempts = 0
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                receiver.attempts += 1
                if receiver.down:
                    return self._answer(503, {"err": "temporarily_unavailable", "description": "down"})
                if receiver.authorization and self.headers.get("authorization") != receiver.authorization:
                    return self._answer(401, {"err": "authentication_failed", "description": "bad token"})
                if self.headers.get("content-type") != "application/secevent+jwt":
                    return self._answer(400, {"err": "invalid_request", "description": "content type"})
                try:
                    claims = verify_set(body, receiver.jwks, issuer=receiver.issuer, audience=receiver.audience)
                except Exception as exc:
                    with receiver.lock:
                        receiver.refused.append((400, str(exc)))
                    return self._answer(400, {"err": "invalid_key", "description": str(exc)})
                with receiver.arrived:
                    receiver.received.append((time.monotonic(), claims, body))
                    receiver.arrived.notify_all()
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The claims of the first ``count`` SETs received, waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.arrived.wait(left)
            return [claims for _, claims, _ in self.received]

    def wait_attempts(self, count: int, timeout: float = 30.0) -> int:
        """The POSTs received so far, once there are ``count`` (or ``timeout`` seconds have passed)."""
        deadline = time.monotonic() + timeout
        while self.attempts < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.attempts

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(event type, claims) of every SET received."""
        return [(next(iter(c["events"])), c) for _, c, _ in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
