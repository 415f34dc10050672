"""``server.signals`` errors name the key and the problem, and never echo a secret."""

from __future__ import annotations

import secrets

import pytest

from offboard.errors import ConfigError
from offboard.web._app import create_app

from ..server._support import Clock, configure, new_secret, open_engine

PLAIN_TOKEN = "plain-" + secrets.token_hex(12)  # a token written in place of a reference; made per run


@pytest.mark.parametrize(
    "signals, message",
    [
        ({"receivers": {}}, "server.signals.issuer: Field required"),
        ({"issuer": "ftp://x.example"}, "server.signals.issuer: must be an https URL"),
        ({"issuer": "https://x.example?a=1"}, "no query or fragment"),
        (
            {"issuer": "https://x.example", "receivers": {"app": {"token": PLAIN_TOKEN}}},
            "server.signals.receivers.app.token: must be a reference",
        ),
        ({"issuer": "https://x.example", "receivers": {"app": {}}}, "give token"),
        (
            {"issuer": "https://x.example", "receivers": {"app": {"push_to": "http://10.1.2.3/e"}}},
            "receivers.app.push_to: must be an https URL",
        ),
        (
            {"issuer": "https://x.example", "receivers": {"app": {"token": "env:NOT_SET_ANYWHERE_SSF"}}},
            "server.signals.receivers.app.token",
        ),
        ({"issuer": "https://x.example", "signing_key": "-----BEGIN PRIVATE KEY-----"}, "must be file:PATH"),
        (
            {
                "issuer": "https://x.example",
                "receivers": {"app": {"token": "env:SSF_OK_TOKEN"}},
                "signing_key": "file:/nonexistent/ssf.pem",
            },
            "server.signals.signing_key (/nonexistent/ssf.pem): cannot read",
        ),
        (
            {"issuer": "https://x.example", "transmitters": {"idp": {"issuer": "https://idp.example", "act_on": 3}}},
            "server.signals.transmitters.idp.act_on",
        ),
        ({"issuer": "https://x.example", "bogus": 1}, "server.signals.bogus: unknown key"),
    ],
)
def test_bad_signals_settings_name_the_key(make_company, monkeypatch, signals, message):
    monkeypatch.setenv("SSF_OK_TOKEN", "ssf-ok-token-5a7c9e1d3f")
    company = make_company(systems=1)
    configure(company, new_secret(), monkeypatch, server={"signals": signals})
    engine = open_engine(company, Clock())
    try:
        with pytest.raises(ConfigError) as info:
            create_app(engine)
        assert message in str(info.value)
        assert PLAIN_TOKEN not in str(info.value)
    finally:
        engine.close()


def test_a_key_that_is_not_a_private_rsa_key_is_refused(make_company, monkeypatch, tmp_path):
    key = tmp_path / "not-a-key.pem"
    key.write_text("hello")
    monkeypatch.setenv("SSF_OK_TOKEN", "ssf-ok-token-5a7c9e1d3f")
    company = make_company(systems=1)
    signals = {
        "issuer": "https://x.example",
        "signing_key": f"file:{key}",
        "receivers": {"a": {"token": "env:SSF_OK_TOKEN"}},
    }
    configure(company, new_secret(), monkeypatch, server={"signals": signals})
    engine = open_engine(company, Clock())
    try:
        with pytest.raises(ConfigError, match="not a PEM RSA private key"):
            create_app(engine)
    finally:
        engine.close()
