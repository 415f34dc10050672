"""Notices: end-date heads-ups to managers and case summaries to IT, over real SMTP and the Slack sandbox."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml

from offboard import Secret
from offboard.checklist._notifiers import EmailNotifier, Notice, NotifyError, SlackNotifier, send_end_date_notices
from offboard.config._config import load_config
from offboard.engine._engine import Engine
from offboard.sandbox import Sandbox

from .._smtp import free_port, mail_notifier, wait_for
from ._support import events


def hr_rows(today: date) -> list[dict]:
    def row(name, **kw):
        base = {
            "id": f"{name}@corp.example",
            "email": f"{name}@corp.example",
            "name": name.title(),
            "type": "contractor",
            "manager": "M001",
            "timezone": "Asia/Tokyo",
        }
        return {**base, **kw}

    return [
        {
            "id": "mgr@corp.example",
            "email": "mgr@corp.example",
            "employee_id": "M001",
            "name": "Mgr",
            "type": "employee",
        },
        row("soon", end_date=(today + timedelta(days=3)).isoformat()),
        row("later", end_date=(today + timedelta(days=20)).isoformat()),
        row("gone", end_date=(today - timedelta(days=2)).isoformat()),
        row("staff", type="employee", end_date=(today + timedelta(days=2)).isoformat()),
        row("orphaned", manager=None, end_date=(today + timedelta(days=2)).isoformat()),
    ]


def open_engine(tmp_path, config: dict) -> Engine:
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(config))
    (tmp_path / "data").mkdir(exist_ok=True)
    return Engine.open(load_config(path), tmp_path / "data")


def test_manager_gets_one_email_before_a_contractors_end_date(smtp, tmp_path, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-smtp-secret")
    today = datetime.now(UTC).date()
    hr = tmp_path / "hr.json"
    hr.write_text(json.dumps(hr_rows(today)))
    engine = open_engine(
        tmp_path,
        {
            "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
            "notifiers": mail_notifier(smtp, "end_date"),
        },
    )
    try:
        sent = send_end_date_notices(engine, days=7)
        assert [s["person"]["id"] for s in sent] == ["soon@corp.example"]
        wait_for(lambda: smtp.messages)
        assert len(smtp.messages) == 1
        rcpts, message = smtp.messages[0]
        assert rcpts == ["mgr@corp.example"] and message["To"] == "mgr@corp.example"
        end = today + timedelta(days=3)
        assert message["Subject"] == f"Access of Soon ends on {end.isoformat()}"
        assert f"end date is {end.isoformat()} 23:59 Asia/Tokyo" in message.get_content()
        before = (end - timedelta(days=2)).isoformat()  # the contractor policy's steps due by the last day
        assert (
            f"- Collect the handover file (open work, documents, credentials handed back) (manager, {before})"
            in message.get_content()
        )
        assert "final timesheet" not in message.get_content()  # due after the last day
        assert send_end_date_notices(engine, days=7) == []  # once per end date
        assert [e["payload"]["to"] for e in events(tmp_path / "data", "notice")] == [["mail:mgr@corp.example"]]
        assert [s["person"]["id"] for s in send_end_date_notices(engine, days=30)] == ["later@corp.example"]
    finally:
        engine.close()


def test_it_gets_a_summary_of_every_closed_case_including_incomplete(smtp, make_company, tmp_path, run):
    company = make_company(systems=2, people=6)
    today = datetime.now(UTC).date()
    hr = tmp_path / "hr.json"
    hr.write_text(
        json.dumps(
            [
                {
                    "email": f"user{i}@corp.example",
                    "type": "contractor",
                    "end_date": (today - timedelta(days=1)).isoformat() if i in (1, 2) else None,
                }
                for i in range(6)
            ]
        )
    )
    company.extra = {
        "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
        "limits": {"max_cases": 5, "max_percent": 50},
        "notifiers": {
            "it": {
                "type": "email",
                "events": ["case_closed"],
                "settings": {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "security": "none",
                    "sender": "offboard@corp.example",
                    "to": ["it@corp.example"],
                },
            }
        },
    }
    company.write_config(sys1={"forbid": ["disable_account"]})
    result = run("--config", str(company.config_path), "sweep", "--json")
    assert result.exit_code == 3, result.output  # sys1 refuses to disable: both cases incomplete
    wait_for(lambda: len(smtp.messages) >= 2)
    assert sorted(m["Subject"] for _, m in smtp.messages) == [
        "offboard: case for user1@corp.example incomplete",
        "offboard: case for user2@corp.example incomplete",
    ]
    for rcpts, message in smtp.messages:
        assert rcpts == ["it@corp.example"]
        assert (
            "Not verified:" in message.get_content()
            and "sys1" in message.get_content()
            and "disable_account" in message.get_content()
        )

    smtp.messages.clear()
    result = run("--config", str(company.config_path), "revoke", "user4@corp.example", "--yes", "--json")
    wait_for(lambda: smtp.messages)
    assert [m["Subject"] for _, m in smtp.messages] == ["offboard: case for user4@corp.example incomplete"]


def test_notices_go_to_managers_and_the_it_channel_in_the_slack_sandbox(tmp_path):
    with Sandbox(people=80, seed=4, systems=("slack",)) as sb:
        sim = sb.sim("slack")
        sim.knobs.window_scale = 0.01  # chat.postMessage allows ~1 per second per channel; do not wait for it here
        config = sb.config()
        token = config["connectors"]["slack"]["settings"]["token"]
        engine = open_engine(
            tmp_path,
            {
                "people": config["people"],
                "notifiers": {
                    "it-slack": {
                        "type": "slack",
                        "settings": {"token": token, "channel": "C0ITOPS", "api_url": sb.url("slack") + "/api/"},
                    }
                },
            },
        )
        try:
            now = engine.clock()
            due = [
                p
                for p in sb.company.people
                if p.type == "contractor" and p.manager and now < p.end_date <= now + timedelta(days=60)
            ]
            assert due, "the seeded company should have contractors ending within 60 days"
            sent = send_end_date_notices(engine, days=60)
            assert sorted(s["person"]["id"] for s in sent) == sorted(p.id for p in due)
            by_channel = {m["channel"]: m["text"] for m in sim.messages}
            for person in due:
                manager_uid = sim._index[person.manager.lower()]
                assert person.end_date.astimezone(_zone(person.timezone)).date().isoformat() in by_channel[manager_uid]
                assert person.email in by_channel[manager_uid]
            assert len(sim.messages) == len(due)

            from offboard import CaseClosed, Person
            from offboard.checklist._notifiers import case_closed, notify

            case_closed(
                case=CaseClosed(
                    id="case-x",
                    person=Person("p@corp.example"),
                    status="incomplete",
                    trigger="cli",
                    policy="default",
                    summary=("slack p: failed (boom)",),
                    notify=lambda notice: notify(engine.config, "case_closed", notice),
                )
            )
            last = sim.messages[-1]
            assert last["channel"] == "C0ITOPS" and "case-x" in last["text"] and "boom" in last["text"]
        finally:
            engine.close()


def _zone(name):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_delivery_errors_are_clear_and_never_show_secrets(tmp_path):
    secret = Secret("xoxb-very-secret-token-123", source="env:SLACK")
    slack = SlackNotifier("it", {"token": secret, "channel": "#it", "api_url": f"http://127.0.0.1:{free_port()}/api/"})
    with pytest.raises(NotifyError) as err:
        slack.send(Notice("case_closed", "s", "t"))
    assert (
        "cannot reach Slack" in str(err.value) and "xoxb" not in str(err.value) and "xoxb" not in repr(slack.settings)
    )
    mail = EmailNotifier(
        "mail",
        {
            "host": "127.0.0.1",
            "port": free_port(),
            "security": "none",
            "sender": "a@x",
            "to": ["b@x"],
            "username": "u",
            "password": Secret("smtp-password-xyz"),
        },
    )
    with pytest.raises(NotifyError) as err:
        mail.send(Notice("case_closed", "s", "t"))
    assert "cannot reach SMTP server 127.0.0.1" in str(err.value) and "smtp-password-xyz" not in str(err.value)
    with pytest.raises(Exception, match="must not be written inline"):
        EmailNotifier("mail", {"host": "h", "sender": "a@x", "password": "plaintext"})


def test_bad_notifier_config_names_the_key(tmp_path):
    from offboard.checklist._notifiers import notifiers_for
    from offboard.errors import ConfigError

    config = load_config(_write(tmp_path, {"notifiers": {"it": {"type": "pager", "settings": {}}}}))
    with pytest.raises(ConfigError, match=r"notifiers.it.*unknown notifier type 'pager'"):
        notifiers_for(config, "case_closed")
    config = load_config(_write(tmp_path, {"notifiers": {"it": {"type": "email", "settings": {"host": "h"}}}}))
    with pytest.raises(ConfigError, match=r"notifiers\.it\.settings\.sender: Field required"):
        notifiers_for(config, "case_closed")


def _write(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
