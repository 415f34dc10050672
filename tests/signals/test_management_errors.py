"""Malformed stream-management and poll requests: 4xx naming the problem, and nothing changed."""

from __future__ import annotations

import pytest

from offboard.signals import POLL, PUSH

from .conftest import APP_TOKEN

AUTH = {"Authorization": f"Bearer {APP_TOKEN}"}


def counts(ssf):
    signals = ssf.server.engine.store.signals
    return len(signals.streams()), sum(len(v) for v in signals.subjects().values()), len(signals.outbox())


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("post", "/ssf/stream", b"{not json", 400, "not JSON"),
        ("post", "/ssf/stream", b"[1, 2]", 400, "JSON object"),
        ("post", "/ssf/stream", b'{"delivery": "push"}', 400, "delivery: must be a JSON object"),
        ("post", "/ssf/stream", b'{"delivery": {"method": "urn:example:carrier-pigeon"}}', 400, "delivery.method"),
        ("post", "/ssf/stream", b'{"delivery": {"method": "%s"}}' % PUSH.encode(), 400, "delivery.endpoint_url"),
        (
            "post",
            "/ssf/stream",
            b'{"delivery": {"method": "%s", "endpoint_url": "http://10.0.0.8/x"}}' % PUSH.encode(),
            400,
            "https",
        ),
        (
            "post",
            "/ssf/stream",
            b'{"delivery": {"method": "%s", "endpoint_url": "https://a.example/x",'
            b' "authorization_header": "Bearer a\\r\\nX-Evil: 1"}}' % PUSH.encode(),
            400,
            "one line",
        ),
        ("post", "/ssf/stream", b'{"events_requested": "all"}', 400, "events_requested"),
        ("post", "/ssf/stream", b'{"events_requested": [1]}', 400, "events_requested"),
        ("post", "/ssf/stream", b'{"description": 7}', 400, "description"),
        ("post", "/ssf/stream", b"{" + b'"a":{' * 5000 + b"}" * 5001, 400, "nested"),
        ("post", "/ssf/stream", b'{"description": "' + b"x" * 70_000 + b'"}', 413, "limit"),
        ("patch", "/ssf/stream", b"{}", 400, "stream_id: required"),
        ("patch", "/ssf/stream", b'{"stream_id": 5}', 400, "stream_id"),
        ("patch", "/ssf/stream", b'{"stream_id": "no-such-stream"}', 404, "no stream"),
        ("put", "/ssf/stream", b"", 400, "empty"),
        ("delete", "/ssf/stream", None, 400, "stream_id"),
        ("get", "/ssf/status", None, 400, "stream_id"),
        ("post", "/ssf/status", b'{"stream_id": "no-such-stream", "status": "enabled"}', 404, "no stream"),
        ("post", "/ssf/subjects:add", b'{"stream_id": "no-such-stream"}', 404, "no stream"),
        ("post", "/ssf/verify", b'{"stream_id": ["x"]}', 400, "stream_id"),
    ],
)
def test_bad_management_requests(ssf, method, path, body, status, message):
    before = counts(ssf)
    answer = ssf.client.request(method, path, content=body, headers={**AUTH, "content-type": "application/json"})
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert set(error) == {"error", "message"} and message in error["message"]
    assert counts(ssf) == before


@pytest.mark.parametrize(
    "body, message",
    [
        ({"status": "sleeping"}, "status: must be one of"),
        ({"status": None}, "status: required"),
        ({"status": "paused", "reason": ["x"]}, "reason: must be a string"),
    ],
)
def test_bad_status_updates(ssf, body, message):
    stream = ssf.create({})
    answer = ssf.client.post("/ssf/status", json={"stream_id": stream["stream_id"], **body}, headers=AUTH)
    assert answer.status_code == 400 and message in answer.json()["message"]
    assert ssf.client.get("/ssf/status", params={"stream_id": stream["stream_id"]}, headers=AUTH).json()["status"] == (
        "enabled"
    )


@pytest.mark.parametrize(
    "subject, message",
    [
        (None, "subject: must be a JSON object"),
        ({"email": "a@corp.example"}, "subject.format: required"),
        ({"format": "email"}, "subject.email: required"),
        ({"format": "iss_sub", "iss": "https://idp.example"}, "subject.sub: required"),
        ({"format": "complex"}, "at least one member"),
        ({"format": "complex", "user": {"format": "complex", "user": {}}}, "cannot nest"),
        ({"format": "complex", "user": {"format": "opaque"}}, "subject.user.id: required"),
        ({"format": "aliases", "identifiers": []}, "subject.identifiers"),
        ({"format": "email", "email": "x" * 600}, "longer than"),
    ],
)
def test_bad_subjects(ssf, subject, message):
    stream = ssf.create({})
    for path in ("/ssf/subjects:add", "/ssf/subjects:remove"):
        answer = ssf.client.post(path, json={"stream_id": stream["stream_id"], "subject": subject}, headers=AUTH)
        assert answer.status_code == 400 and message in answer.json()["message"], answer.text
    assert ssf.server.engine.store.signals.subjects() == {}


def test_transmitter_supplied_properties_must_match_on_update(ssf):
    stream = ssf.create({})
    answer = ssf.client.patch(
        "/ssf/stream", json={"stream_id": stream["stream_id"], "iss": "https://evil.example"}, headers=AUTH
    )
    assert answer.status_code == 400 and "iss" in answer.json()["message"]
    same = ssf.client.patch("/ssf/stream", json={**stream, "description": "ok"}, headers=AUTH)
    assert same.status_code == 200 and same.json()["description"] == "ok"


def test_verification_more_often_than_the_interval_is_429(make_company, monkeypatch):
    from ..server._support import stop
    from .conftest import start_ssf

    ssf = start_ssf(make_company, monkeypatch, min_verification_interval=60)
    try:
        stream = ssf.create({})
        first = ssf.client.post("/ssf/verify", json={"stream_id": stream["stream_id"]}, headers=AUTH)
        second = ssf.client.post("/ssf/verify", json={"stream_id": stream["stream_id"]}, headers=AUTH)
        assert first.status_code == 204 and second.status_code == 429
        assert int(second.headers["retry-after"]) > 0 and second.json()["error"] == "too_many_requests"
    finally:
        stop(ssf.server)


def test_a_receiver_may_hold_only_so_many_streams(ssf):
    for _ in range(5):
        ssf.create({})
    answer = ssf.client.post("/ssf/stream", json={}, headers=AUTH)
    assert answer.status_code == 409 and answer.json()["error"] == "too_many_streams"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"maxEvents": -1}, "maxEvents"),
        ({"maxEvents": "ten"}, "maxEvents"),
        ({"maxEvents": True}, "maxEvents"),
        ({"returnImmediately": "yes"}, "returnImmediately"),
        ({"ack": "jti-1"}, "ack"),
        ({"setErrs": {"jti-1": "bad"}}, "setErrs"),
    ],
)
def test_bad_poll_requests_get_rfc_8936_errors(ssf, body, message):
    stream = ssf.create({"delivery": {"method": POLL}})
    answer = ssf.client.post(f"/ssf/poll/{stream['stream_id']}", json=body, headers=AUTH)
    assert answer.status_code == 400
    assert answer.json()["err"] == "invalid_request" and message in answer.json()["description"]


def test_polling_a_push_stream_is_refused(ssf):
    stream = ssf.create({"delivery": {"method": PUSH, "endpoint_url": "https://app1.example/events"}})
    answer = ssf.client.post(f"/ssf/poll/{stream['stream_id']}", json={}, headers=AUTH)
    assert answer.status_code == 400 and "push" in answer.json()["description"]


def test_without_signals_configured_the_paths_are_404(server):
    for path in ("/.well-known/ssf-configuration", "/ssf/jwks.json"):
        answer = server.client.get(path)
        assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert server.client.post("/ssf/stream", json={}, headers=AUTH).status_code == 404
