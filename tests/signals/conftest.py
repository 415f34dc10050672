"""Fixtures for the shared-signals tests: offboard serving SSF over a test company."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest

from ..server._support import Clock, Server, configure, new_secret, start, stop

ISSUER = "http://testserver"
APP_TOKEN = "ssf-app1-" + secrets.token_hex(12)  # made per run, never a literal
OTHER_TOKEN = "ssf-app2-" + secrets.token_hex(12)
APP_AUDIENCE = "https://app1.example"


@dataclass
class SSF:
    """The app, and the receivers' bearer headers."""

    server: Server
    stream_id: str = ""  # a stream a test keeps for itself
    idp: Any = None  # a simulated identity provider, when the test has one

    @property
    def client(self) -> Any:
        return self.server.client

    @property
    def transmitter(self) -> Any:
        return self.server.app.state.signals.transmitter

    def auth(self, token: str = APP_TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def create(self, body: dict[str, Any] | None = None, token: str = APP_TOKEN) -> dict[str, Any]:
        response = self.client.post("/ssf/stream", json=body or {}, headers=self.auth(token))
        assert response.status_code == 201, response.text
        return response.json()

    def add(self, stream_id: str, subject: dict[str, Any], token: str = APP_TOKEN) -> None:
        response = self.client.post(
            "/ssf/subjects:add", json={"stream_id": stream_id, "subject": subject}, headers=self.auth(token)
        )
        assert response.status_code == 200, response.text

    def jwks(self) -> dict[str, Any]:
        return self.client.get("/ssf/jwks.json").json()


def signals_config(**extra: Any) -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "receivers": {
            "app1": {"token": "env:SSF_APP1_TOKEN", "audience": APP_AUDIENCE},
            "app2": {"token": "env:SSF_APP2_TOKEN"},
        },
        "feed_seconds": 0.02,
        "retry_max_seconds": 1,
        "min_verification_interval": 0,
        **extra,
    }


def start_ssf(
    make_company: Any,
    monkeypatch: Any,
    systems: dict[str, Any] | None = None,
    server_extra: dict[str, Any] | None = None,
    **signals: Any,
) -> SSF:
    monkeypatch.setenv("SSF_APP1_TOKEN", APP_TOKEN)
    monkeypatch.setenv("SSF_APP2_TOKEN", OTHER_TOKEN)
    company = make_company(systems=2)
    secret = new_secret()
    configure(
        company,
        secret,
        monkeypatch,
        server={"signals": signals_config(**signals), **(server_extra or {})},
        systems=systems,
    )
    return SSF(start(company, secret, Clock()))


@pytest.fixture
def ssf(make_company, monkeypatch):
    """offboard with ``server.signals`` (two receivers) over two test systems; the HR worker off."""
    srv = start_ssf(make_company, monkeypatch)
    yield srv
    stop(srv.server)


from ..server.conftest import clock, server  # noqa: E402, F401  (the plain server, for "not configured")
