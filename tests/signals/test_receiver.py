"""offboard as an SSF receiver: a simulated identity provider's SETs open cases, forged ones open nothing."""

from __future__ import annotations

import secrets
import time

import pytest

from offboard.signals import configuration_url

from ..server._support import Clock, configure, new_secret, start, stop
from ._idp import CAEP, RISC, IdentityProvider, new_key
from .conftest import ISSUER

PUSH_TOKEN = "idp-push-" + secrets.token_hex(12)  # made per run, never a literal
MANAGEMENT_TOKEN = "idp-mgmt-" + secrets.token_hex(12)
PERSON = "user1@corp.example"
SET_TYPE = {"content-type": "application/secevent+jwt"}


@pytest.fixture
def idp():
    provider = IdentityProvider(MANAGEMENT_TOKEN)
    yield provider
    provider.close()


@pytest.fixture
def offboard(make_company, monkeypatch, idp):
    monkeypatch.setenv("IDP_PUSH_TOKEN", PUSH_TOKEN)
    monkeypatch.setenv("IDP_MANAGEMENT_TOKEN", MANAGEMENT_TOKEN)
    company = make_company(systems=2)
    secret = new_secret()
    signals = {
        "issuer": ISSUER,
        "transmitters": {
            "corp-idp": {
                "issuer": idp.issuer,
                "push_token": "env:IDP_PUSH_TOKEN",
                "management_token": "env:IDP_MANAGEMENT_TOKEN",
            }
        },
    }
    configure(company, secret, monkeypatch, server={"signals": signals})
    server = start(company, secret, Clock())
    yield server
    stop(server)


def push(server, token: str, authorization: str = f"Bearer {PUSH_TOKEN}"):
    return server.client.post(
        "/ssf/receive/corp-idp", content=token, headers={**SET_TYPE, "Authorization": authorization}
    )


def test_the_configuration_url_goes_before_the_issuers_path():
    assert (
        configuration_url("https://idp.example/tenant1/") == "https://idp.example/.well-known/ssf-configuration/tenant1"
    )
    assert configuration_url("https://idp.example") == "https://idp.example/.well-known/ssf-configuration"


def test_offboard_creates_a_push_stream_at_the_identity_provider(offboard, idp):
    deadline = time.monotonic() + 5
    while not idp.streams and time.monotonic() < deadline:  # made at start-up, in the background
        time.sleep(0.02)
    stream = offboard.app.state.signals.receiver.subscribe("corp-idp")  # found again, not made twice
    assert stream["iss"] == idp.issuer
    (created,) = idp.streams
    assert created["delivery"] == {
        "method": "urn:ietf:rfc:8935",
        "endpoint_url": f"{ISSUER}/ssf/receive/corp-idp",
        "authorization_header": f"Bearer {PUSH_TOKEN}",
    }
    assert set(created["events_requested"]) == {
        RISC + "account-disabled",
        RISC + "account-purged",
        CAEP + "session-revoked",
    }
    offboard.app.state.signals.receiver.subscribe("corp-idp")
    assert len(idp.streams) == 1  # the existing stream is reused, not a second one made


def test_account_disabled_from_the_idp_opens_a_case_that_disables_the_person(offboard, idp):
    answer = push(offboard, idp.set(RISC + "account-disabled", PERSON, audience=ISSUER))
    assert answer.status_code == 202
    offboard.intake.run_once()
    (case,) = offboard.cases()
    assert case["person_id"] == PERSON and case["status"] == "complete" and case["trigger"] == "webhook"
    assert "account-disabled signalled by" in case["reason"]
    for system in ("sys0", "sys1"):
        assert offboard.company.state(system, "user1")["enabled"] == 0
    (event,) = offboard.events()
    assert event["source"] == "ssf:corp-idp" and event["status"] == "done"


def test_the_same_set_twice_opens_one_case(offboard, idp):
    token = idp.set(CAEP + "session-revoked", PERSON, audience=[ISSUER, "https://other.example"])
    assert push(offboard, token).status_code == 202
    assert push(offboard, token).status_code == 202  # at-least-once delivery: a redelivery is harmless
    offboard.intake.run_once()
    assert len(offboard.cases()) == 1


def test_an_event_offboard_does_not_act_on_is_accepted_and_ignored(offboard, idp):
    assert push(offboard, idp.set(RISC + "account-enabled", PERSON, audience=ISSUER)).status_code == 202
    offboard.intake.run_once()
    assert offboard.cases() == [] and offboard.events() == []


def test_key_rotation_refetches_the_jwks(offboard, idp, monkeypatch):
    monkeypatch.setattr("offboard.signals._receiver.REFETCH_SECONDS", 0.0)
    assert push(offboard, idp.set(RISC + "account-disabled", "user2@corp.example", audience=ISSUER)).status_code == 202
    idp.rotate()
    assert push(offboard, idp.set(RISC + "account-disabled", PERSON, audience=ISSUER)).status_code == 202
    assert idp.jwks_fetches == 2


@pytest.mark.parametrize(
    "forge, err",
    [
        ("bad_signature", "invalid_key"),
        ("unknown_key", "invalid_key"),
        ("wrong_audience", "invalid_audience"),
        ("wrong_issuer", "invalid_issuer"),
        ("untyped", "invalid_request"),
        ("with_exp", "invalid_request"),
        ("not_a_jws", "invalid_request"),
        ("invisible_person", "invalid_request"),
        ("phone_subject", "invalid_request"),
    ],
)
def test_a_forged_or_misdirected_set_opens_nothing(offboard, idp, forge, err):
    other, _ = new_key()
    token = {
        "bad_signature": lambda: idp.set(RISC + "account-disabled", PERSON, audience=ISSUER, key=other),
        "unknown_key": lambda: idp.set(RISC + "account-disabled", PERSON, audience=ISSUER, key=other, kid="nope"),
        "wrong_audience": lambda: idp.set(RISC + "account-disabled", PERSON, audience="https://someone.example"),
        "wrong_issuer": lambda: idp.set(
            RISC + "account-disabled", PERSON, audience=ISSUER, issuer="https://evil.example"
        ),
        "untyped": lambda: idp.set(RISC + "account-disabled", PERSON, audience=ISSUER, typ="JWT"),
        "with_exp": lambda: idp.set(RISC + "account-disabled", PERSON, audience=ISSUER, exp=2_000_000_000),
        "not_a_jws": lambda: "definitely.not.a-set",
        "invisible_person": lambda: idp.set(RISC + "account-disabled", "user1\u200b@corp.example", audience=ISSUER),
        "phone_subject": lambda: idp.set(
            RISC + "account-disabled", PERSON, audience=ISSUER, sub_id={"format": "phone_number", "phone_number": "+1"}
        ),
    }[forge]()
    answer = push(offboard, token)
    assert answer.status_code == 400
    assert answer.json()["err"] == err and answer.json()["description"]  # RFC 8935 section 2.3
    offboard.intake.run_once()
    assert offboard.cases() == [] and offboard.events() == []


def test_a_push_without_the_agreed_token_is_refused(offboard, idp):
    token = idp.set(RISC + "account-disabled", PERSON, audience=ISSUER)
    for authorization in ("", "Bearer wrong-push-token-1234567", f"Basic {PUSH_TOKEN}"):
        answer = push(offboard, token, authorization)
        assert answer.status_code == 401 and answer.json()["err"] == "authentication_failed"
        assert PUSH_TOKEN not in answer.text
    assert (
        offboard.client.post(
            "/ssf/receive/corp-idp",
            content=token,
            headers={"Authorization": f"Bearer {PUSH_TOKEN}", "content-type": "application/json"},
        ).status_code
        == 400
    )
    assert push_to(offboard, "nobody", token).status_code == 404
    offboard.intake.run_once()
    assert offboard.cases() == []


def push_to(server, name, token):
    return server.client.post(f"/ssf/receive/{name}", content=token, headers={**SET_TYPE})


def test_a_signal_goes_through_the_same_guards_as_an_hr_event(make_company, monkeypatch, idp):
    """A protected account stays untouched however the termination arrives."""
    monkeypatch.setenv("IDP_PUSH_TOKEN", PUSH_TOKEN)
    company = make_company(systems=2)
    secret = new_secret()
    signals = {
        "issuer": ISSUER,
        "transmitters": {"corp-idp": {"issuer": idp.issuer, "push_token": "env:IDP_PUSH_TOKEN"}},
    }
    configure(company, secret, monkeypatch, server={"signals": signals}, protected=["user1"])
    server = start(company, secret, Clock())
    try:
        assert push(server, idp.set(RISC + "account-purged", PERSON, audience=ISSUER)).status_code == 202
        server.intake.run_once()
        (event,) = server.events()
        assert event["source"] == "ssf:corp-idp" and event["status"] == "done"
        (case,) = server.cases()
        assert server.engine.store.actions(case["id"]) == []  # the plan left the protected accounts out
        for system in ("sys0", "sys1"):
            assert server.company.state(system, "user1")["enabled"] == 1  # protected: never disabled
    finally:
        stop(server)
