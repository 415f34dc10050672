"""Per-client limits: a request rate on the unauthenticated endpoints, and a lockout after wrong auditor tokens."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from offboard.web._limits import FailureLimiter, RateLimiter

from ._auditor import bearer, start_auditor
from ._support import Clock, configure, event, new_secret, start, stop


@pytest.fixture
def limited(make_company, monkeypatch):
    """An app allowing a burst of 3 requests per client, refilled at 60 a minute (one a second)."""
    company = make_company(systems=1)
    secret = new_secret()
    configure(
        company,
        secret,
        monkeypatch,
        server={"client_rate_per_minute": 60, "client_burst": 3, "trusted_proxy_header": "X-Forwarded-For"},
    )
    srv = start(company, secret, Clock())
    yield srv
    stop(srv)


def test_a_client_over_its_rate_gets_429_with_retry_after_and_one_log_line(limited):
    answers = [limited.post(event()).status_code for _ in range(3)]
    assert answers == [202, 202, 202]
    with capture_logs() as logs:
        response = limited.post(event())
    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited" and response.json()["message"]
    assert response.headers["Retry-After"] == "1"
    assert [entry["event"] for entry in logs] == ["rate limited"]
    limited.clock.advance(seconds=1)  # one request refilled: the test moves the clock, never sleeps
    assert limited.post(event()).status_code == 202
    assert limited.post(event()).status_code == 429


def test_the_rate_limit_covers_hooks_and_auditor_pages_but_not_health(limited):
    paths = ["/v1/hooks/bamboohr", "/audit/", "/v1/events"]
    assert [limited.client.post(p).status_code for p in paths] == [404, 405, 415]  # the burst of 3
    assert [limited.client.post(p).status_code for p in paths] == [429, 429, 429]
    assert limited.client.get("/audit/").status_code == 429
    assert limited.client.get("/health").status_code == 200 and limited.client.get("/metrics").status_code == 200


def test_each_client_has_its_own_bucket_by_the_trusted_proxy_header(limited):
    for _ in range(3):
        assert limited.client.post("/v1/events", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}).status_code
    blocked = limited.client.post("/v1/events", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"})
    assert blocked.status_code == 429
    other = limited.client.post("/v1/events", headers={"X-Forwarded-For": "10.0.0.2"})  # its last address counts
    assert other.status_code == 415


def test_the_rate_limit_has_safe_defaults():
    from offboard.web._settings import ServerSettings

    settings = ServerSettings(webhook_secret="env:X")
    assert (settings.client_rate_per_minute, settings.client_burst) == (600, 60)
    assert settings.trusted_proxy_header is None and settings.auditor_failures_per_minute == 10


def test_the_client_table_is_bounded_and_forgets_idle_clients():
    now = [0.0]
    limiter = RateLimiter(60, 2, lambda: now[0], max_clients=100)
    for n in range(1000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter.buckets) == 100 and "10.0.3.231" in limiter.buckets  # the newest kept, the oldest out
    now[0] = 2.0  # a bucket full again is the same as none
    limiter.take("192.0.2.1")
    assert list(limiter.buckets) == ["192.0.2.1"]

    failures = FailureLimiter(3, lambda: now[0], max_clients=10)
    for n in range(50):
        failures.failed(f"client-{n}")
    assert len(failures.failures) == 10
    now[0] = 100.0
    failures.failed("late")
    assert list(failures.failures) == ["late"]


# -- bounded /metrics labels on /v1/events ----------------------------------------------


def test_sources_named_by_a_signed_sender_share_one_metrics_label(make_company, monkeypatch):
    from ._support import UNLIMITED

    company = make_company(systems=1)
    secret = new_secret()
    configure(company, secret, monkeypatch, server={"event_sources": ["workday"], **UNLIMITED})
    server = start(company, secret, Clock())
    try:
        for n in range(200):
            assert server.post(event(source=f"sender-{n}")).status_code == 202
        assert server.post(event(source="workday")).status_code == 202
        text = server.client.get("/metrics").text
    finally:
        stop(server)
    series = [line for line in text.splitlines() if line.startswith("offboard_hr_events_received_total{")]
    assert len(series) == 2 and "sender-" not in text
    assert 'offboard_hr_events_received_total{outcome="accepted",source="other"} 200.0' in text
    assert 'offboard_hr_events_received_total{outcome="accepted",source="workday"} 1.0' in text


# -- failed auditor tokens ----------------------------------------------------------------


@pytest.fixture
def auditor(make_company, monkeypatch, clock):
    srv, token = start_auditor(make_company, monkeypatch, clock)
    yield srv, token
    stop(srv)


def test_wrong_auditor_tokens_lock_the_client_out_even_with_the_right_token(auditor):
    server, token = auditor
    for _ in range(10):
        assert server.client.get("/audit/", headers=bearer("x" * 32)).status_code == 401
    locked = server.client.get("/audit/", headers=bearer(token))
    assert locked.status_code == 429 and locked.json()["error"] == "too_many_failures"
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    page = server.client.get("/audit/", headers={**bearer(token), "Accept": "text/html"})
    assert page.status_code == 429 and "Too many requests" in page.text and token not in page.text
    server.clock.advance(seconds=61)  # the window passes
    assert server.client.get("/audit/", headers=bearer(token)).status_code == 200


def test_successful_auditor_logins_do_not_count_as_failures(auditor):
    server, token = auditor
    for _ in range(9):
        assert server.client.get("/audit/", headers=bearer("x" * 32)).status_code == 401
    for _ in range(20):
        assert server.client.get("/audit/report.csv", headers=bearer(token)).status_code == 200
    assert server.client.get("/audit/", headers=bearer("x" * 32)).status_code == 401  # the tenth failure
    assert server.client.get("/audit/", headers=bearer(token)).status_code == 429
    assert json.loads(server.client.get("/audit/", headers=bearer(token)).text)["error"] == "too_many_failures"
