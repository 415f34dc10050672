"""The server's configuration: clear errors, secrets only by reference and never shown."""

from __future__ import annotations

import base64
import json

import pytest

from offboard.config._config import load_config
from offboard.errors import ConfigError
from offboard.web._app import create_app

from ._support import Clock, configure, event, new_secret, open_engine


def app_error(company, clock=None) -> str:
    engine = open_engine(company, clock or Clock())
    try:
        with pytest.raises(ConfigError) as info:
            create_app(engine)
    finally:
        engine.close()
    return str(info.value)


def test_the_webhook_secret_is_required(make_company):
    company = make_company(systems=1)
    message = app_error(company)
    assert "server.webhook_secret" in message and "required" in message


def test_an_inline_secret_is_refused_without_being_echoed(make_company):
    company = make_company(systems=1)
    inline = new_secret()
    company.extra = {"server": {"webhook_secret": inline}}
    company.write_config()
    message = app_error(company)
    assert "env:NAME or file:PATH" in message and inline not in message


def test_a_secret_that_is_not_base64_is_refused_without_being_echoed(make_company, monkeypatch):
    company = make_company(systems=1)
    configure(company, "not base64 at all !!", monkeypatch)
    message = app_error(company)
    assert "not base64" in message and "not base64 at all" not in message


def test_an_unset_environment_variable_is_named(make_company, monkeypatch):
    company = make_company(systems=1)
    company.extra = {"server": {"webhook_secret": "env:OFFBOARD_NOT_SET_ANYWHERE"}}
    company.write_config()
    assert "OFFBOARD_NOT_SET_ANYWHERE" in app_error(company)


def test_a_secret_from_a_file(make_company, tmp_path):
    company = make_company(systems=1)
    path = tmp_path / "whsec"
    path.write_text(new_secret() + "\n")
    company.extra = {"server": {"webhook_secret": f"file:{path}"}}
    company.write_config()
    engine = open_engine(company, Clock())
    assert create_app(engine) is not None
    engine.close()


@pytest.mark.parametrize(
    "server, words",
    [
        ({"colour": "red"}, "server.colour: unknown key"),
        ({"max_body_bytes": 10}, "server.max_body_bytes"),
        ({"day_ends_at": "5pm"}, "server.day_ends_at"),
        ({"sources": {"bamboohr": {}}}, "server.sources.bamboohr.secret: required"),
        ({"sources": {"hibob": {"secret": "env:X_UNSET_123", "colour": 1}}}, "unknown key(s) colour"),
    ],
)
def test_bad_server_settings_name_the_key(make_company, monkeypatch, server, words):
    company = make_company(systems=1)
    configure(company, new_secret(), monkeypatch, server=server)
    assert words in app_error(company)


def test_the_secret_never_appears_in_answers_or_logs(server, capsys):
    from offboard.config._logging import configure_logging

    configure_logging(2, json=True)
    raw = base64.b64decode(server.secret.removeprefix("whsec_"))
    answers = [
        server.post(event(), headers={"webhook-signature": "v1,AAAA"}).text,
        server.client.get("/metrics").text,
        server.client.get("/openapi.json").text,
        server.post(event(type="nope")).text,
    ]
    server.intake.run_once()
    captured = capsys.readouterr()
    for text in [*answers, captured.out, captured.err]:
        assert server.secret not in text and server.secret.removeprefix("whsec_") not in text
        assert raw.hex() not in text


def test_serve_with_a_bad_configuration_is_one_clear_line(make_company, run):
    company = make_company(systems=1)
    result = run("--config", str(company.config_path), "serve")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "server.webhook_secret" in result.output
    assert "Traceback" not in result.output


def test_events_lists_what_came_in_and_what_became_of_it(server, run):
    config = str(server.company.config_path)
    assert json.loads(run("--config", config, "events", "--json").output) == []
    assert "No HR events" in run("--config", config, "events").output
    server.post(event(id="evt-1"))
    server.post(event("ghost@corp.example", id="evt-2"))
    server.intake.run_once()
    listed = json.loads(run("--config", config, "events", "--json").output)
    assert [(e["event"], e["status"]) for e in listed] == [("workday:evt-2", "unresolved"), ("workday:evt-1", "done")]
    assert listed[1]["case"] and listed[1]["detail"] == "case complete"
    table = run("--config", config, "events", "--unresolved").output
    assert "workday:evt-2" in table and "workday:evt-1" not in table
    assert load_config(server.company.config_path).server["webhook_secret"].startswith("env:")
