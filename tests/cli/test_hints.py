""" "Did you mean": a mistyped person gets the nearest known identifiers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from offboard.cli._main import cli
from offboard.errors import UnknownPerson


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_a_mistyped_person_from_the_people_source(make_company, tmp_path):
    company = make_company(systems=1, people=3)
    hr = tmp_path / "hr.csv"
    hr.write_text(
        "id,email,employee_id,name\nu0,user0@corp.example,E100,User Zero\nu1,user1@corp.example,E101,User One\n"
    )
    company.extra["people"] = [{"type": "hr_export", "settings": {"path": str(hr)}}]
    config = company.write_config()
    result = run("--config", str(config), "plan", "usr0@corp.example")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: nobody matches 'usr0@corp.example' in the configured people sources.")
    assert "Did you mean 'user0@corp.example'" in result.stderr and result.stderr.count("\n") == 1
    assert run("--config", str(config), "plan", "qqqqqq").stderr.endswith("people sources\n")


def test_a_mistyped_person_from_the_inventory(make_company):
    company = make_company(systems=2, people=3)
    assert run("--config", str(company.config_path), "inventory", "sync").exit_code == 0
    result = run("--config", str(company.config_path), "plan", "user1@corp.exmaple")
    assert result.exit_code == 2
    assert "no account matches 'user1@corp.exmaple' in any system (sys0, sys1)" in result.stderr
    assert "Did you mean 'user1@corp.example'?" in result.stderr


def test_unknown_person_carries_its_suggestions():
    exc = UnknownPerson("nobody matches 'x'", suggestions=["a", "b"])
    assert exc.suggestions == ("a", "b") and str(exc) == "nobody matches 'x'. Did you mean 'a' or 'b'?"
    with pytest.raises(UnknownPerson, match=r"^plain$"):
        raise UnknownPerson("plain")
