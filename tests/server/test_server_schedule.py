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
