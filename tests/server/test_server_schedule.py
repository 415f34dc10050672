"""The server runs sweeps on the cron schedule in ``sweep.schedule``."""

from __future__ import annotations

from datetime import UTC, datetime

from ._support import Clock, configure, new_secret, start, stop


def test_the_server_sweeps_on_its_schedule(make_company, monkeypatch, tmp_path):
    company = make_company(systems=2, people=4)
    people = tmp_path / "hr.csv"
    people.write_text(
        "id,email,type,end_date,timezone\n"
        "user0@corp.example,user0@corp.example,employee,,UTC\n"
        "user1@corp.example,user1@corp.example,contractor,2026-01-31,Europe/Berlin\n"  # long gone
        "user2@corp.example,user2@corp.example,contractor,2099-01-31,UTC\n"
        "user3@corp.example,user3@corp.example,employee,,UTC\n"
    )
    secret = new_secret()
    configure(
        company,
        secret,
        monkeypatch,
        sweep={"schedule": "0 * * * *"},
        limits={"max_percent": 50},
        people=[{"type": "hr_export", "settings": {"path": str(people)}}],
    )
    clock = Clock(datetime(2026, 11, 25, 10, 30, tzinfo=UTC))
    server = start(company, secret, clock)
    try:
        server.intake.run_once()
        assert server.cases() == []  # 10:30: the next run is at 11:00
        clock.advance(minutes=31)
        server.intake.run_once()
        cases = server.cases()
        assert [c["person_id"] for c in cases] == ["user1@corp.example"]
        assert cases[0]["trigger"] == "sweep" and cases[0]["status"] == "complete"
        server.intake.run_once()  # same hour: no second sweep
        assert len(server.cases()) == 1
    finally:
        stop(server)
    assert company.state("sys0", "user1")["enabled"] is False
    assert company.state("sys0", "user2")["enabled"] is True


def test_a_bad_schedule_is_a_config_error(make_company, monkeypatch, run):
    company = make_company(systems=1)
    configure(company, new_secret(), monkeypatch, sweep={"schedule": "every hour"})
    result = run("--config", str(company.config_path), "status")
    assert result.exit_code == 2
    assert "sweep: schedule 'every hour' is not a cron expression" in result.output


def test_the_scheduled_sweep_checks_recent_leavers_and_notifies_what_they_still_hold(
    make_company, monkeypatch, tmp_path, smtp
):
    """``sweep.check_since``: each scheduled sweep of the server also runs ``offboard check --since`` over everyone
    with a case in that window, and a leftover planted behind offboard's back is notified (event ``residual``)."""
    import json

    from .. import _fakes
    from .._smtp import mail_notifier, wait_for

    company = make_company(systems=1, people=3)
    people = tmp_path / "hr.csv"
    people.write_text(
        "id,email,type,end_date,timezone\n"
        "user0@corp.example,user0@corp.example,employee,,UTC\n"
        "user1@corp.example,user1@corp.example,contractor,2026-01-31,UTC\n"  # long gone: the sweep offboards them
        "user2@corp.example,user2@corp.example,employee,,UTC\n"
    )
    configure(
        company,
        new_secret(),
        monkeypatch,
        sweep={"schedule": "0 * * * *", "check_since": "30d"},
        limits={"max_percent": 50},
        people=[{"type": "hr_export", "settings": {"path": str(people)}}],
        notifiers=mail_notifier(smtp, "residual"),
    )
    clock = Clock(datetime(2026, 11, 25, 10, 30, tzinfo=UTC))
    server = start(company, new_secret(), clock)
    try:
        server.intake.run_once()  # 10:30: the first sweep is due at 11:00
        clock.advance(minutes=31)
        server.intake.run_once()  # 11:01: the sweep offboards user1, then checks them: nothing left
        assert [c["status"] for c in server.cases()] == ["complete"]
        assert smtp.messages == []
        db = _fakes.open_db(company.systems["sys0"])
        db.execute("update accounts set groups = ? where name = ?", (json.dumps(["vpn"]), "user1"))  # re-joined
        db.close()
        clock.advance(minutes=30)
        server.intake.run_once()  # 11:31: not yet the hour
        assert smtp.messages == []
        clock.advance(minutes=30)
        server.intake.run_once()  # 12:01: the next sweep's check finds the group and says so
        wait_for(lambda: len(smtp.messages) >= 1)
    finally:
        stop(server)
    _, message = smtp.messages[-1]
    assert message["Subject"] == "offboard: 1 recent leaver(s) still hold access"
    assert "user1@corp.example: sys0 user1 remove_memberships: user1: groups is still vpn" in message.get_content()
    assert len(server.cases()) == 1  # the check reads; it opens no case
