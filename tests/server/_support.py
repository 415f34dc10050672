"""Shared helpers for the server tests: a controllable clock, signed requests, a running app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from standardwebhooks import Webhook

from offboard.config._config import load_config
from offboard.config._paths import data_dir
from offboard.engine._engine import Engine
from offboard.state.schema import hr_events
from offboard.web._app import create_app

SECRET_ENV = "OFFBOARD_TEST_WEBHOOK_SECRET"
BAMBOO_KEY, BOB_KEY = "bamboo-private-key-0123456789", "bob-secret-token-9876543210"
#: Per-client rate limits out of the way, for tests that send hundreds of requests at one instant from one client.
UNLIMITED = {"client_rate_per_minute": 10_000_000, "client_burst": 1_000_000}
HOOK_SOURCES = {"bamboohr": {"secret": "env:BAMBOO_KEY"}, "hibob": {"secret": "env:BOB_KEY"}}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None) -> dict[str, str]:
    """Standard Webhooks headers made by the reference library (not by our code)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signature}


def bamboo_headers(body: bytes, stamp: str, key: str = BAMBOO_KEY) -> dict[str, str]:
    """BambooHR's signature: hex HMAC-SHA256 of the body followed by the timestamp."""
    signature = hmac.new(key.encode(), body + stamp.encode(), hashlib.sha256).hexdigest()
    return {"X-BambooHR-Timestamp": stamp, "X-BambooHR-Signature": signature}


def bob_headers(body: bytes, key: str = BOB_KEY) -> dict[str, str]:
    """HiBob's signature: Base64 HMAC-SHA512 of the body."""
    return {"Bob-Signature": base64.b64encode(hmac.new(key.encode(), body, hashlib.sha512).digest()).decode()}


def event(person: str = "user1@corp.example", type: str = "termination", **extra: Any) -> dict[str, Any]:
    return {
        "id": extra.pop("id", f"evt-{uuid.uuid4().hex[:12]}"),
        "type": type,
        "person": person,
        "source": "workday",
        **extra,
    }


@dataclass
class Server:
    """An app on an engine over a test company, with its client and clock."""

    company: Any
    secret: str
    clock: Clock
    engine: Engine
    client: TestClient
    app: Any
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def intake(self) -> Any:
        return self.app.state.intake

    def post(
        self,
        payload: Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        msg_id: str | None = None,
        at: datetime | None = None,
        body: bytes | None = None,
    ) -> Any:
        body = body if body is not None else json.dumps(payload).encode()
        signed = sign(self.secret, body, msg_id=msg_id, at=at or self.clock())
        return self.client.post(
            "/v1/events", content=body, headers={"content-type": content_type, **signed, **(headers or {})}
        )

    def cases(self) -> list[dict[str, Any]]:
        return self.engine.store.find_cases(limit=1000)

    def events(self) -> list[dict[str, Any]]:
        with self.engine.store._db.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(hr_events).order_by(hr_events.c.seq)).mappings()]


def configure(
    company: Any,
    secret: str,
    monkeypatch: Any,
    server: dict[str, Any] | None = None,
    systems: dict[str, Any] | None = None,
    **extra: Any,
) -> None:
    monkeypatch.setenv(SECRET_ENV, secret)
    company.extra = {"server": {"webhook_secret": f"env:{SECRET_ENV}", **(server or {})}, **extra}
    company.write_config(**(systems or {}))


def open_engine(company: Any, clock: Clock) -> Engine:
    return Engine.open(load_config(company.config_path), data_dir(), clock=clock)


def start_hooks(make_company: Any, monkeypatch: Any, **server: Any) -> Server:
    """A started app with the bundled BambooHR and HiBob sources configured (plus ``server`` settings)."""
    company = make_company(systems=2)
    secret = new_secret()
    monkeypatch.setenv("BAMBOO_KEY", BAMBOO_KEY)
    monkeypatch.setenv("BOB_KEY", BOB_KEY)
    configure(company, secret, monkeypatch, server={"sources": HOOK_SOURCES, **server})
    return start(company, secret, Clock())


def start(company: Any, secret: str, clock: Clock, process: bool = False) -> Server:
    engine = open_engine(company, clock)
    app = create_app(engine, clock=clock, process=process)
    client = TestClient(app)
    client.__enter__()
    return Server(company, secret, clock, engine, client, app)


def stop(server: Server) -> None:
    server.client.__exit__(None, None, None)
    server.engine.close()
