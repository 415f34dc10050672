"""offboard as an SSF transmitter, tested by a receiver written against the specifications only."""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from offboard.signals import (
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    CREDENTIAL_CHANGE,
    POLL,
    PUSH,
    SESSION_REVOKED,
    VERIFICATION,
)

from ..server._support import stop
from ._receiver import PushReceiver, verify_set
from .conftest import APP_AUDIENCE, APP_TOKEN, ISSUER, OTHER_TOKEN, start_ssf

PERSON = "user1@corp.example"


@pytest.fixture
def receiver(ssf):
    push = PushReceiver(issuer=ISSUER, audience=APP_AUDIENCE, authorization="Bearer receiver-side-secret-51c2")
    push.jwks = ssf.jwks()
    yield push
    push.close()


def deliveries(ssf):
    """The payloads of the audit log's ``ssf_delivery`` records."""
    return [json.loads(e["payload"]) for e in ssf.server.engine.store.events() if e["type"] == "ssf_delivery"]


def eventually(check, timeout=5.0):
    """Wait until ``check()`` is true (the pusher marks a SET delivered just after the receiver's 202)."""
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.02)
    return check()


def push_stream(ssf, receiver, **extra):
    delivery = {"method": PUSH, "endpoint_url": receiver.url, "authorization_header": receiver.authorization}
    return ssf.create({"delivery": delivery, **extra})


def test_configuration_metadata_names_every_endpoint_under_the_issuer(ssf):
    meta = ssf.client.get("/.well-known/ssf-configuration")
    assert meta.status_code == 200 and meta.headers["content-type"] == "application/json"
    body = meta.json()
    assert body["spec_version"] == "1_0" and body["issuer"] == ISSUER
    assert body["delivery_methods_supported"] == [PUSH, POLL]
    for name, path in {
        "jwks_uri": "/ssf/jwks.json",
        "configuration_endpoint": "/ssf/stream",
        "status_endpoint": "/ssf/status",
        "add_subject_endpoint": "/ssf/subjects:add",
        "remove_subject_endpoint": "/ssf/subjects:remove",
        "verification_endpoint": "/ssf/verify",
    }.items():
        assert body[name] == ISSUER + path
    keys = ssf.client.get("/ssf/jwks.json").json()["keys"]
    assert [k["kty"] for k in keys] == ["RSA"] and "d" not in keys[0]  # public only


def test_the_set_key_is_not_the_audit_key(ssf):
    audit_files = {p.name for p in ssf.server.engine.data_dir.rglob("*") if p.is_file()}
    assert "ssf-signing-key.pem" in audit_files
    kid = ssf.jwks()["keys"][0]["kid"]
    assert kid not in (ssf.server.engine.data_dir / "ssf-signing-key.pem").read_text()


def test_stream_creation_returns_the_transmitter_supplied_fields(ssf, receiver):
    stream = push_stream(ssf, receiver, events_requested=[SESSION_REVOKED, "urn:example:unknown"], description="app 1")
    assert stream["iss"] == ISSUER and stream["aud"] == APP_AUDIENCE
    assert stream["events_delivered"] == [SESSION_REVOKED]  # the unknown one is ignored
    assert stream["delivery"]["endpoint_url"] == receiver.url and stream["description"] == "app 1"
    assert stream["delivery"]["authorization_header"] == "(set)"  # the receiver's credential is never echoed
    read = ssf.client.get("/ssf/stream", params={"stream_id": stream["stream_id"]}, headers=ssf.auth())
    assert read.status_code == 200 and read.json() == stream
    listed = ssf.client.get("/ssf/stream", headers=ssf.auth()).json()
    assert [s["stream_id"] for s in listed] == [stream["stream_id"]]
    assert ssf.client.get("/ssf/stream", headers=ssf.auth(OTHER_TOKEN)).json() == []  # another receiver sees none


def test_a_poll_stream_gets_its_endpoint_from_the_transmitter(ssf):
    stream = ssf.create({})  # no delivery: poll (SSF 1.0, "Creating a Stream")
    assert stream["delivery"] == {"method": POLL, "endpoint_url": f"{ISSUER}/ssf/poll/{stream['stream_id']}"}


def test_update_replace_status_and_delete(ssf, receiver):
    stream = push_stream(ssf, receiver)
    sid = stream["stream_id"]
    patched = ssf.client.patch("/ssf/stream", json={"stream_id": sid, "description": "renamed"}, headers=ssf.auth())
    assert patched.status_code == 200 and patched.json()["description"] == "renamed"
    assert patched.json()["delivery"]["endpoint_url"] == receiver.url  # untouched by a PATCH
    replaced = ssf.client.put("/ssf/stream", json={"stream_id": sid, "delivery": {"method": POLL}}, headers=ssf.auth())
    assert replaced.status_code == 200 and "description" not in replaced.json()  # PUT: missing = deleted
    status = ssf.client.post(
        "/ssf/status", json={"stream_id": sid, "status": "paused", "reason": "maintenance"}, headers=ssf.auth()
    )
    assert status.json() == {"stream_id": sid, "status": "paused", "reason": "maintenance"}
    assert ssf.client.get("/ssf/status", params={"stream_id": sid}, headers=ssf.auth()).json()["status"] == "paused"
    assert ssf.client.delete("/ssf/stream", params={"stream_id": sid}, headers=ssf.auth()).status_code == 204
    assert ssf.client.get("/ssf/stream", params={"stream_id": sid}, headers=ssf.auth()).status_code == 404


def test_verification_event_reaches_the_receiver_with_its_state(ssf, receiver):
    stream = push_stream(ssf, receiver)
    answer = ssf.client.post(
        "/ssf/verify", json={"stream_id": stream["stream_id"], "state": "c3RhdGUtMTIz"}, headers=ssf.auth()
    )
    assert answer.status_code == 204
    (claims,) = receiver.wait_for(1)
    assert claims["events"] == {VERIFICATION: {"state": "c3RhdGUtMTIz"}}
    assert claims["sub_id"] == {"format": "opaque", "id": stream["stream_id"]}
    assert eventually(lambda: [d["event_type"] for d in deliveries(ssf)] == [VERIFICATION])  # audited, no person
    assert "person" not in deliveries(ssf)[0]


def test_push_of_session_revoked_and_account_disabled_within_one_second(ssf, receiver):
    stream = push_stream(ssf, receiver)
    ssf.add(stream["stream_id"], {"format": "email", "email": PERSON.upper()})  # email matches without case
    ssf.add(stream["stream_id"], {"format": "email", "email": "user2@corp.example"})
    result = ssf.server.engine.revoke(PERSON)
    verified = time.monotonic()
    assert result.status.value == "complete"
    claims = receiver.wait_for(2, timeout=5)
    got = {next(iter(c["events"])): (at, c) for at, c, _ in receiver.received}
    assert set(got) == {SESSION_REVOKED, ACCOUNT_DISABLED}
    for at, c in got.values():
        assert at - verified < 1.0
        assert c["sub_id"] == {"format": "email", "email": PERSON}
        assert c["iss"] == ISSUER and c["aud"] == APP_AUDIENCE and c["txn"] == result.case_id
    revoked = got[SESSION_REVOKED][1]["events"][SESSION_REVOKED]
    assert revoked["initiating_entity"] == "policy" and isinstance(revoked["event_timestamp"], int)
    assert len({c["jti"] for c in claims}) == 2
    time.sleep(0.2)
    assert len(receiver.received) == 2  # one per case and event type, though two systems verified a disable
    assert eventually(lambda: len(deliveries(ssf)) == 2)
    done = deliveries(ssf)
    assert {(d["receiver"], d["result"], d["person"]["id"]) for d in done} == {("app1", "delivered", PERSON)}
    assert {d["jti"] for d in done} == {c["jti"] for c in claims} and all(d["at"].endswith("Z") for d in done)


def test_no_set_for_a_person_the_stream_does_not_hold(ssf, receiver):
    stream = push_stream(ssf, receiver)
    ssf.add(stream["stream_id"], {"format": "email", "email": "user2@corp.example"})
    ssf.server.engine.revoke(PERSON)
    ssf.transmitter.feed()
    ssf.transmitter.push_due()
    assert receiver.received == []


def test_account_enabled_on_undo(ssf, receiver):
    stream = push_stream(ssf, receiver, events_requested=[ACCOUNT_ENABLED])
    ssf.add(stream["stream_id"], {"format": "iss_sub", "iss": ISSUER, "sub": PERSON})
    result = ssf.server.engine.revoke(PERSON)
    ssf.server.engine.undo(result.case_id)
    (claims,) = receiver.wait_for(1)
    subject = {"format": "iss_sub", "iss": ISSUER, "sub": PERSON}
    assert claims["sub_id"] == subject
    assert claims["events"] == {ACCOUNT_ENABLED: {"subject": subject}}  # SSF 1.0 3.1.1: also in the event


def test_credential_change_when_the_disable_scrambled_the_password(make_company, monkeypatch):
    ssf = start_ssf(make_company, monkeypatch, systems={"sys0": {"scramble_password": True}})
    try:
        stream = ssf.create({"events_requested": [CREDENTIAL_CHANGE]})
        ssf.add(stream["stream_id"], {"format": "email", "email": PERSON})
        ssf.server.engine.revoke(PERSON)
        ssf.transmitter.feed()
        sets = ssf.client.post(
            f"/ssf/poll/{stream['stream_id']}", json={"returnImmediately": True}, headers=ssf.auth()
        ).json()["sets"]
        (token,) = sets.values()
        claims = verify_set(token, ssf.jwks(), issuer=ISSUER, audience=APP_AUDIENCE)
        change = claims["events"][CREDENTIAL_CHANGE]
        assert change["credential_type"] == "password" and change["change_type"] == "update"
    finally:
        stop(ssf.server)


def test_poll_with_acknowledgements(ssf):
    stream = ssf.create({"delivery": {"method": POLL}})
    url = f"/ssf/poll/{stream['stream_id']}"
    ssf.add(stream["stream_id"], {"format": "email", "email": PERSON})
    ssf.server.engine.revoke(PERSON)
    ssf.transmitter.feed()
    first = ssf.client.post(url, json={"maxEvents": 1, "returnImmediately": True}, headers=ssf.auth()).json()
    assert len(first["sets"]) == 1 and first["moreAvailable"] is True
    again = ssf.client.post(url, json={"maxEvents": 10, "returnImmediately": True}, headers=ssf.auth()).json()
    assert set(first["sets"]) < set(again["sets"]) and len(again["sets"]) == 2  # unacknowledged: sent again
    types = set()
    for jti, token in again["sets"].items():
        claims = verify_set(token, ssf.jwks(), issuer=ISSUER, audience=APP_AUDIENCE)
        assert claims["jti"] == jti
        types.add(next(iter(claims["events"])))
    assert types == {SESSION_REVOKED, ACCOUNT_DISABLED}
    jtis = sorted(again["sets"])
    acked = ssf.client.post(
        url,
        json={
            "ack": [jtis[0]],
            "setErrs": {jtis[1]: {"err": "invalid_key", "description": "test"}},
            "returnImmediately": True,
        },
        headers=ssf.auth(),
    ).json()
    assert acked == {"sets": {}, "moreAvailable": False}
    results = {d["jti"]: d["result"] for d in deliveries(ssf)}
    assert results == {jtis[0]: "acknowledged", jtis[1]: "rejected"}


def test_redelivery_after_the_receiver_was_down_same_jti_none_lost(ssf, receiver):
    stream = push_stream(ssf, receiver)
    for i in range(4):
        ssf.add(stream["stream_id"], {"format": "email", "email": f"user{i}@corp.example"})
    receiver.down = True
    for i in range(3):
        ssf.server.engine.revoke(f"user{i}@corp.example")
    ssf.transmitter.feed()
    ssf.transmitter.push_due()
    assert receiver.wait_attempts(1) >= 1 and receiver.received == []  # the push thread may have sent it first
    pending = ssf.server.engine.store.signals.outbox(stream["stream_id"])
    assert len(pending) == 6 and {r["status"] for r in pending} == {"pending"}
    receiver.down = False
    deadline = time.monotonic() + 30
    while len(receiver.received) < 6 and time.monotonic() < deadline:
        # The server's clock is the test's: it moves only when told. Loaded CI runs twice got four of the six
        # SETs after one 5 s step, so it keeps moving, as real time would, until all six have come.
        ssf.server.clock.advance(seconds=5)  # past the retry's backoff
        receiver.wait_for(6, timeout=1)
    claims = receiver.wait_for(6, timeout=0)
    assert sorted(c["jti"] for c in claims) == sorted(r["jti"] for r in pending)  # the same SETs, every one
    assert eventually(lambda: {r["status"] for r in ssf.server.engine.store.signals.outbox()} == {"delivered"})
    results = [d["result"] for d in deliveries(ssf)]
    assert "retrying" in results and results.count("delivered") == 6


def test_the_outbox_survives_a_restart(make_company, monkeypatch):
    ssf = start_ssf(make_company, monkeypatch)
    push = PushReceiver(issuer=ISSUER, audience=APP_AUDIENCE)
    try:
        push.jwks = ssf.jwks()
        stream = ssf.create({"delivery": {"method": PUSH, "endpoint_url": push.url}})
        ssf.add(stream["stream_id"], {"format": "email", "email": PERSON})
        push.down = True
        ssf.server.engine.revoke(PERSON)
        ssf.transmitter.feed()
        stop(ssf.server)
        push.down = False
        from ..server._support import Clock, start

        # the restart comes later: the failed push's retry is due (the test clock stands still otherwise)
        later = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
        again = start(ssf.server.company, ssf.server.secret, Clock(later))
        try:
            assert len(push.wait_for(2)) == 2
        finally:
            stop(again)
    finally:
        push.close()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-configured-token-7f"}, {"Authorization": f"Basic {APP_TOKEN}"}],
    ids=["missing", "unknown", "not-bearer"],
)
def test_rejected_receiver_tokens(ssf, headers):
    for method, path in [
        ("post", "/ssf/stream"),
        ("get", "/ssf/stream"),
        ("post", "/ssf/verify"),
        ("post", "/ssf/subjects:add"),
        ("get", "/ssf/status"),
        ("post", "/ssf/poll/x"),
    ]:
        answer = ssf.client.request(method, path, json={}, headers=headers)
        assert answer.status_code == 401, (method, path)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert APP_TOKEN not in answer.text


def test_a_receiver_cannot_touch_another_receivers_stream(ssf):
    stream = ssf.create({})
    sid = stream["stream_id"]
    for answer in (
        ssf.client.get("/ssf/stream", params={"stream_id": sid}, headers=ssf.auth(OTHER_TOKEN)),
        ssf.client.delete("/ssf/stream", params={"stream_id": sid}, headers=ssf.auth(OTHER_TOKEN)),
        ssf.client.post("/ssf/verify", json={"stream_id": sid}, headers=ssf.auth(OTHER_TOKEN)),
        ssf.client.post(f"/ssf/poll/{sid}", json={}, headers=ssf.auth(OTHER_TOKEN)),
    ):
        assert answer.status_code == 404


def test_sets_verify_with_pyjwt_and_never_carry_sub_or_exp(ssf):
    stream = ssf.create({})
    ssf.add(stream["stream_id"], {"format": "complex", "user": {"format": "email", "email": PERSON}})
    ssf.server.engine.revoke(PERSON)
    ssf.transmitter.feed()
    sets = ssf.client.post(
        f"/ssf/poll/{stream['stream_id']}", json={"returnImmediately": True}, headers=ssf.auth()
    ).json()["sets"]
    for token in sets.values():
        assert jwt.get_unverified_header(token)["typ"] == "secevent+jwt"
        claims = verify_set(token, ssf.jwks(), issuer=ISSUER, audience=APP_AUDIENCE)
        assert claims["sub_id"] == {"format": "email", "email": PERSON}
    with pytest.raises(jwt.InvalidAudienceError):
        verify_set(next(iter(sets.values())), ssf.jwks(), issuer=ISSUER, audience="https://someone-else.example")


def test_a_configured_push_stream_tells_a_receiver_about_every_person(make_company, monkeypatch):
    """Receivers such as Okta take pushed SETs but create no stream: offboard keeps one from the config."""
    push = PushReceiver(issuer=ISSUER, audience="okta-org", authorization="SSWS " + secrets.token_hex(12))
    monkeypatch.setenv("OKTA_PUSH_AUTH", push.authorization)
    receivers = {
        "okta": {
            "push_to": push.url,
            "push_authorization": "env:OKTA_PUSH_AUTH",
            "audience": "okta-org",
            "events": [SESSION_REVOKED],
        }
    }
    ssf = start_ssf(make_company, monkeypatch, receivers=receivers)
    try:
        push.jwks = ssf.jwks()
        ssf.server.engine.revoke("user3@corp.example")
        (claims,) = push.wait_for(1)
        assert claims["events"][SESSION_REVOKED]["subject"] == {"format": "email", "email": "user3@corp.example"}
        assert claims["aud"] == "okta-org"
        assert [s["stream_id"] for s in ssf.server.engine.store.signals.streams()] == ["config-okta"]
    finally:
        stop(ssf.server)
        push.close()


def test_tokens_and_push_credentials_never_reach_logs_audit_or_answers(ssf, receiver, capsys):
    stream = push_stream(ssf, receiver)
    ssf.add(stream["stream_id"], {"format": "email", "email": PERSON})
    receiver.down = True
    ssf.server.engine.revoke(PERSON)
    ssf.transmitter.feed()
    ssf.transmitter.push_due()  # a failed attempt: logged and audited
    receiver.down = False
    ssf.server.clock.advance(seconds=5)
    receiver.wait_for(2)
    ssf.client.post("/ssf/stream", json={}, headers=ssf.auth("wrong-token-value-5d2e9f"))
    listed = ssf.client.get("/ssf/stream", headers=ssf.auth()).text
    ssf.server.engine.wait_sealed()
    audit = "".join(
        p.read_text(errors="replace")
        for p in ssf.server.engine.data_dir.rglob("*")
        if p.is_file() and not p.name.startswith(("offboard.db", "ssf-signing-key"))
    )  # the state database keeps it, to send it
    stored = json.dumps([e["payload"] for e in ssf.server.engine.store.events()])
    seen = capsys.readouterr()
    for secret in (APP_TOKEN, OTHER_TOKEN, receiver.authorization, "wrong-token-value-5d2e9f"):
        for where, text in (("audit", audit), ("events", stored), ("stdout", seen.out + seen.err), ("answer", listed)):
            assert secret not in text, where
    assert APP_TOKEN not in repr(ssf.transmitter.tokens) and "kid=" in repr(ssf.transmitter.key)


def test_a_paused_stream_holds_its_sets_and_a_disabled_one_drops_them(ssf, receiver):
    stream = push_stream(ssf, receiver)
    sid = stream["stream_id"]
    for person in (PERSON, "user2@corp.example"):
        ssf.add(sid, {"format": "email", "email": person})
    ssf.client.post("/ssf/status", json={"stream_id": sid, "status": "paused"}, headers=ssf.auth())
    ssf.server.engine.revoke(PERSON)
    ssf.transmitter.feed()
    ssf.transmitter.push_due()
    assert receiver.received == []  # held while paused
    ssf.client.post("/ssf/status", json={"stream_id": sid, "status": "enabled"}, headers=ssf.auth())
    assert len(receiver.wait_for(2)) == 2  # sent once enabled again
    ssf.client.post("/ssf/status", json={"stream_id": sid, "status": "disabled"}, headers=ssf.auth())
    ssf.server.engine.revoke("user2@corp.example")
    ssf.transmitter.feed()
    ssf.transmitter.push_due()
    ssf.client.post("/ssf/status", json={"stream_id": sid, "status": "enabled"}, headers=ssf.auth())
    ssf.transmitter.push_due()
    time.sleep(0.2)
    assert len(receiver.received) == 2  # a disabled stream holds nothing for later


def test_one_persons_sets_arrive_in_order_even_after_a_failure(ssf, receiver):
    stream = push_stream(ssf, receiver)
    ssf.add(stream["stream_id"], {"format": "email", "email": PERSON})
    receiver.down = True
    ssf.server.engine.revoke(PERSON)
    ssf.transmitter.feed()
    ssf.transmitter.push_due()
    receiver.wait_attempts(1)  # the server's own push thread may have sent it, still out when push_due looked
    ssf.transmitter.push_due()
    assert receiver.attempts == 1  # the second SET waited for the first, which failed
    receiver.down = False
    ssf.server.clock.advance(seconds=5)
    receiver.wait_for(2)
    assert [event for event, _ in receiver.events()] == [SESSION_REVOKED, ACCOUNT_DISABLED]
