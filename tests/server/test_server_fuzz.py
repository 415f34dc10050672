"""Property-based fuzzing of the intake routes: no input gives a 5xx, no refusal stores or opens anything.

Headers and bodies of ``/v1/events`` and ``/v1/hooks/{bamboohr,hibob}`` are generated, sent unsigned,
signed by the test itself (so the mutation reaches the parsers past the signature check) or signed and
then tampered with. Bounded to a few hundred examples so it runs in CI in well under a minute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._support import (
    UNLIMITED,
    bamboo_headers,
    bob_headers,
    sign,
    start_hooks,
    stop,
)


@pytest.fixture
def hooks(make_company, monkeypatch):
    """The bundled HR sources, as in conftest, with no per-client rate limit: hundreds of requests at one instant."""
    srv = start_hooks(make_company, monkeypatch, **UNLIMITED)
    yield srv
    stop(srv)


PATHS = ["/v1/events", "/v1/hooks/bamboohr", "/v1/hooks/hibob", "/v1/hooks/workday", "/v1/hooks/%C2%B2"]
HEADER_NAMES = [
    "content-type",
    "content-length",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "X-BambooHR-Timestamp",
    "X-BambooHR-Signature",
    "Bob-Signature",
]

# Header values as bytes: ASCII look-alikes, digits in other scripts, huge numbers, invisible characters.
odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["²", "-1e18", "1e308", "nan", "inf", "0", "-0", "٣", "v1,", "v1,!!!", "\u212a", "\u202e"]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
header_value = odd_text.map(lambda t: t.encode("utf-8")[:200])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
PEOPLE = ["user1@corp.example", "USER2@corp.example", "user1\u200b@corp.example", "us\u212aer@corp.example", "E0001"]


@st.composite
def payloads(draw) -> bytes:
    """A body: raw bytes, any JSON, or a near-valid event of each kind with some fields replaced."""
    kind = draw(st.sampled_from(["raw", "json", "ours", "cloud", "bamboo", "bob", "deep"]))
    if kind == "raw":
        return draw(st.binary(max_size=300))
    if kind == "deep":
        depth = draw(st.integers(min_value=100, max_value=3000))
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    person = draw(st.sampled_from(PEOPLE) | st.text(max_size=20))
    if kind == "ours":
        base = {"id": draw(st.text(min_size=1, max_size=12)), "type": "termination", "person": person}
    elif kind == "cloud":
        base = {
            "specversion": "1.0",
            "id": "ce-1",
            "source": "hr",
            "type": "offboard.termination",
            "data": {"person": person},
        }
    elif kind == "bamboo":
        fields = {"Work Email": person, "Status": draw(st.sampled_from(["Inactive", "Active", ""]))}
        base = {"employees": [{"id": "41", "changedFields": ["Status"], "fields": fields}]}
    else:
        base = {"type": "employee.left", "data": {"employeeId": person}, "triggeredAt": draw(st.text(max_size=10))}
    for key, value in draw(st.dictionaries(st.sampled_from([*base, "effective_at", "timezone"]), json_values)).items():
        base[key] = value
    return json.dumps(base).encode()


def signed_headers(path: str, body: bytes, srv, skew: int) -> dict[str, str]:
    at = srv.clock() + timedelta(seconds=skew)
    if path == "/v1/events":  # signed here, not by the reference library: it takes only text bodies
        stamp = str(int(at.timestamp()))
        key = base64.b64decode(srv.secret.removeprefix("whsec_"))
        msg_id = f"msg_{hashlib.sha256(body).hexdigest()[:20]}"  # one id per message, as a sender would
        digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        signature = "v1," + base64.b64encode(digest).decode()
        return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
    if path == "/v1/hooks/bamboohr":
        return bamboo_headers(body, str(int(at.timestamp())))
    if path == "/v1/hooks/hibob":
        return bob_headers(body)
    return {}


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    path=st.sampled_from(PATHS),
    body=payloads(),
    signing=st.sampled_from(["none", "valid", "valid", "tampered"]),
    skew=st.sampled_from([0, 0, 0, -(10**6), 299]),
    content_type=st.sampled_from(["application/json", "application/cloudevents+json", "text/plain", ""]),
    extra=st.dictionaries(st.sampled_from(HEADER_NAMES), header_value, max_size=3),
)
def test_no_request_gives_a_5xx_or_stores_anything_when_refused(hooks, path, body, signing, skew, content_type, extra):
    headers: dict[str, str | bytes] = {"content-type": content_type} if content_type else {}
    if signing != "none":
        headers.update(signed_headers(path, body, hooks, skew))
    if signing == "tampered" or signing == "none":
        headers.update(extra)  # mutated after signing: the signature no longer covers what is sent
    before = len(hooks.events())
    response = hooks.client.post(path, content=body, headers=headers)
    assert response.status_code < 500 and response.status_code != 429, response.text
    if response.status_code >= 400:
        answer = response.json()
        assert isinstance(answer["error"], str) and isinstance(answer["message"], str)
        assert len(hooks.events()) == before  # a refused request stores nothing
    assert hooks.client.get("/health").status_code == 200


def test_after_the_fuzzing_only_accepted_events_open_cases(hooks):
    """The worker then acts on accepted events only: a separate run keeps the property test fast."""
    body = json.dumps({"id": "evt-fuzz", "type": "termination", "person": "user1\u202e@corp.example"}).encode()
    response = hooks.client.post(
        "/v1/events", content=body, headers={"content-type": "application/json", **sign(hooks.secret, body)}
    )
    assert response.status_code == 422
    hooks.intake.run_once()
    assert hooks.cases() == [] and hooks.client.get("/health").status_code == 200
