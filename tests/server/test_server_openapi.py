"""schemathesis against the running app's OpenAPI document: no input makes it fail with a 5xx."""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from ._support import UNLIMITED, Clock, configure, event, new_secret, start, stop


@pytest.fixture
def server(make_company, monkeypatch):
    """The app of conftest with no per-client rate limit: schemathesis sends hundreds of requests at one instant."""
    company = make_company(systems=2)
    secret = new_secret()
    configure(company, secret, monkeypatch, server=UNLIMITED)
    srv = start(company, secret, Clock())
    yield srv
    stop(srv)


def test_schemathesis_finds_no_server_errors(server):
    schema = schemathesis.openapi.from_asgi("/openapi.json", server.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {(op.method.upper(), op.path) for op in operations}
    assert {
        ("POST", "/v1/events"),
        ("POST", "/v1/hooks/{source}"),
        ("GET", "/health"),
        ("GET", "/ready"),
        ("GET", "/metrics"),
    } <= paths
    failures: list[str] = []
    for operation in operations:

        @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            if response.status_code >= 500 or response.status_code == 429:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400:
                assert set(response.json()) >= {"error", "message"}, response.text  # every refusal explains itself

        check()
    assert failures == []
    assert server.cases() == []  # nothing unsigned got through


def test_the_openapi_document_describes_the_event_schema(server):
    doc = server.client.get("/openapi.json").json()
    body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/cloudevents+json"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["EventIn"]["properties"]["type"]["enum"]) == {
        "termination",
        "termination_cancelled",
        "end_date_changed",
    }
    assert "data" in schemas["CloudEventIn"]["properties"]
    assert {"202", "401", "409", "413", "415", "422"} <= set(doc["paths"]["/v1/events"]["post"]["responses"])
    # a documented example round-trips
    assert server.post(event(id="doc-1")).status_code == 202
    assert json.loads(server.client.get("/health").text) == {"status": "ok"}


@pytest.mark.parametrize(
    "method, path", [("GET", "/no/such/path"), ("GET", "/audit/people/%0A/x"), ("DELETE", "/health")]
)
def test_routing_refusals_explain_themselves_too(server, method, path):
    response = server.client.request(method, path)
    assert response.status_code in (404, 405)
    assert set(response.json()) == {"error", "message"}
