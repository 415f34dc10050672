"""The intake's hostile-input fuzzing, extended to the shared-signals endpoints.

Every SSF path is sent generated bodies (the intake fuzz test's raw bytes, arbitrary JSON and
deep nesting, plus near-valid SSF requests with fields replaced) with no token, a wrong one or a
receiver's own, and odd headers. No request may give a 5xx; each refusal has its documented
shape and changes nothing.
"""

from __future__ import annotations

import json
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..server._support import UNLIMITED, stop
from ..server.test_server_fuzz import header_value, json_values, payloads
from ._idp import RISC, IdentityProvider
from .conftest import APP_TOKEN, ISSUER, OTHER_TOKEN, start_ssf

PATHS = [
    ("post", "/ssf/stream"),
    ("get", "/ssf/stream"),
    ("patch", "/ssf/stream"),
    ("put", "/ssf/stream"),
    ("delete", "/ssf/stream"),
    ("get", "/ssf/status"),
    ("post", "/ssf/status"),
    ("post", "/ssf/subjects:add"),
    ("post", "/ssf/subjects:remove"),
    ("post", "/ssf/verify"),
    ("post", "/ssf/poll/{stream}"),
    ("post", "/ssf/poll/%C2%B2"),
    ("post", "/ssf/receive/corp-idp"),
    ("get", "/.well-known/ssf-configuration"),
]
RFC_PATHS = ("/ssf/poll/", "/ssf/receive/")
FIELDS = [
    "stream_id",
    "delivery",
    "events_requested",
    "description",
    "status",
    "reason",
    "subject",
    "verified",
    "state",
    "maxEvents",
    "returnImmediately",
    "ack",
    "setErrs",
    "iss",
    "aud",
]


PUSH_TOKEN = "idp-push-fuzz-" + secrets.token_hex(12)  # made per run


@pytest.fixture
def ssf(make_company, monkeypatch):
    idp = IdentityProvider("idp-mgmt-token-fuzz-5e8a2c")
    monkeypatch.setenv("IDP_PUSH_TOKEN", PUSH_TOKEN)
    transmitters = {"corp-idp": {"issuer": idp.issuer, "push_token": "env:IDP_PUSH_TOKEN"}}
    srv = start_ssf(  # no per-client limit: hundreds of requests at one instant
        make_company, monkeypatch, server_extra=UNLIMITED, max_poll_events=5, transmitters=transmitters
    )
    srv.idp = idp
    srv.stream_id = srv.create({"delivery": {"method": "urn:ietf:rfc:8936"}})["stream_id"]
    yield srv
    stop(srv.server)
    idp.close()


@st.composite
def ssf_bodies(draw, stream_id: str, idp: IdentityProvider) -> bytes:
    kind = draw(st.sampled_from(["intake", "ssf", "ssf", "subject", "set", "signed"]))
    if kind == "signed":  # a genuine SET of the identity provider, some claims replaced
        claims = draw(st.dictionaries(st.sampled_from(["iss", "aud", "jti", "sub_id", "events", "sub"]), json_values))
        typ = draw(st.sampled_from(["secevent+jwt", "JWT"]))
        return idp.set(RISC + "account-disabled", "user1@corp.example", audience=ISSUER, typ=typ, **claims).encode()
    if kind == "intake":
        return draw(payloads())
    if kind == "set":
        return draw(
            st.sampled_from([b"a.b.c", b"eyJhbGciOiJub25lIn0.e30.", b"..", b"\xff\xfe"]) | st.binary(max_size=80)
        )
    base: dict = {"stream_id": draw(st.sampled_from([stream_id, stream_id, "", "x" * 300]) | json_values)}
    if kind == "subject":
        subject = draw(
            st.sampled_from(
                [
                    {"format": "email", "email": "user1@corp.example"},
                    {"format": "complex", "user": {"format": "opaque", "id": "E1"}},
                    {"format": "aliases", "identifiers": [{"format": "aliases", "identifiers": []}]},
                ]
            )
            | json_values
        )
        base["subject"] = subject
    for key, value in draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)).items():
        base[key] = value
    return json.dumps(base).encode()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_ssf_request_gives_a_5xx_and_refusals_change_nothing(ssf, data):
    stream_id = ssf.stream_id
    signals = ssf.server.engine.store.signals
    if signals.stream(stream_id) is None:  # an earlier example deleted it: the same id again, so draws stay stable
        signals.create_stream(stream_id, "app1", {"delivery": {"method": "urn:ietf:rfc:8936"}}, ssf.server.clock())
    method, path = data.draw(st.sampled_from(PATHS))
    path = path.format(stream=stream_id)
    token = data.draw(st.sampled_from([None, APP_TOKEN, APP_TOKEN, OTHER_TOKEN, PUSH_TOKEN, "garbage\u202etoken"]))
    headers: dict = {"content-type": data.draw(st.sampled_from(["application/json", "application/secevent+jwt", ""]))}
    if token is not None:
        headers["authorization"] = f"Bearer {token}".encode()
    headers.update(
        data.draw(st.dictionaries(st.sampled_from(["content-length", "authorization"]), header_value, max_size=1))
    )
    body = data.draw(ssf_bodies(stream_id, ssf.idp))
    before = (
        json.dumps(signals.streams(), default=str),
        signals.subjects(),
        len(signals.outbox()),
        len(ssf.server.events()),
    )
    params = {"stream_id": data.draw(st.sampled_from([stream_id, "", "nope"]))} if method in ("get", "delete") else None
    try:
        response = ssf.client.request(method, path, content=body, headers=headers, params=params)
    except Exception as exc:  # the client refused to send a header (not the server's doing)
        if "content-length" in str(exc).lower() or isinstance(exc, (ValueError, UnicodeError)):
            return
        raise
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        answer = response.json()
        rfc = path.startswith(RFC_PATHS) and response.status_code != 404  # a 404 is a routing refusal
        shape = {"err", "description"} if rfc else {"error", "message"}
        assert set(answer) == shape, answer
        after = (
            json.dumps(signals.streams(), default=str),
            signals.subjects(),
            len(signals.outbox()),
            len(ssf.server.events()),
        )
        assert after == before  # nothing stored: no stream change, no SET queued, no HR event


def test_after_the_fuzzing_the_transmitter_still_answers(ssf):
    assert ssf.client.get("/.well-known/ssf-configuration").status_code == 200
    assert ssf.client.get("/health").status_code == 200
