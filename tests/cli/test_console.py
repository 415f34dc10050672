"""Console output for people: library logs go to the log file, not between the tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

NOISY = """
import logging

import offboard
from tests._fakes import TestSystem


class Noisy(TestSystem):
    __test__ = False
    name = "noisy"

    def discover(self, person):
        logging.getLogger("slack_sdk.web.base_client").error("Failed to send a request to Slack API server")
        return super().discover(person)


@offboard.hookimpl
def register_connectors(register):
    register(Noisy)
"""


def offboard(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OFFBOARD_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "connectors"), str(ROOT)]),
    }
    return subprocess.run(
        [sys.executable, "-m", "offboard", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_library_logs_go_to_the_log_file_unless_verbose(make_company, tmp_path, home):
    company = make_company(systems=1, people=1)
    assert company.config_path is not None
    plugin = tmp_path / "noisy_plugin.py"
    plugin.write_text(NOISY)
    data = yaml.safe_load(company.config_path.read_text())
    data["plugins"].append(str(plugin))
    data["connectors"]["sys0"]["type"] = "noisy"
    company.config_path.write_text(yaml.safe_dump(data))
    result = offboard("--config", str(company.config_path), "revoke", "user0@corp.example", "--yes", home=home)
    assert result.returncode == 0, result.stderr
    assert "Failed to send" not in result.stdout + result.stderr
    logged = (home / "offboard.log").read_text().splitlines()
    assert any("Failed to send a request" in line and "slack_sdk" in line for line in logged)
    assert all(json.loads(line) for line in logged if line.startswith("{"))
    verbose = offboard("--config", str(company.config_path), "plan", "user0@corp.example", "-v", home=home)
    assert verbose.returncode == 0
    assert "ERROR slack_sdk.web.base_client: Failed to send a request" in verbose.stderr
    assert "Failed to send" not in verbose.stdout


def test_a_read_only_command_on_a_missing_data_folder_writes_no_log(make_company, tmp_path, home):
    company = make_company(systems=1, people=1)
    result = offboard("--config", str(company.config_path), "plan", "user0@corp.example", home=home)
    assert result.returncode == 0, result.stderr
    assert not home.exists()


def test_an_incomplete_result_lists_each_problem_once_in_words(make_company):
    from click.testing import CliRunner

    from offboard.cli._main import cli

    company = make_company(systems=2, people=1)
    config = company.write_config(sys0={"forbid": ["disable_account"]})
    result = CliRunner().invoke(
        cli, ["--config", str(config), "revoke", "user0@corp.example", "--yes"], catch_exceptions=False
    )
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    start = lines.index("Problems:")
    problems = lines[start + 1 : start + 3]
    assert problems == [
        "  sys0 user0 disable_account: failed, missing permission: Accounts.disable_account",
        "  sys0 user0 remove_memberships: failed, missing permission: Accounts.disable_account",
    ]
    case = lines[start + 3]
    assert case.startswith("Case case-") and case.endswith(
        "incomplete: 4 of 6 action(s) verified, 2 problem(s) listed above "
        f"(`offboard status {case.split()[1]}` shows them again)"
    )
    assert "PermissionDenied" not in result.stdout  # the reason in words, not a class name
    assert result.stdout.count("incomplete:") == 1  # one summary line, the result once
    assert result.stdout.count("remove_memberships: failed") == 1


def test_reasons_lose_python_reprs_and_class_names():
    from offboard.cli._output import plain

    assert plain("(\"('socket ssl wrapping error: reset by peer',)\",)") == "socket ssl wrapping error: reset by peer"
    assert plain("['quota exceeded']") == "quota exceeded"
    assert plain("TransientError: HTTP 503") == "HTTP 503"
    assert plain("Slack: token revoked") == "Slack: token revoked"


def test_the_plan_lists_unsupported_actions(make_company):
    from click.testing import CliRunner

    from offboard.cli._main import cli

    company = make_company(systems=1, people=1)
    result = CliRunner().invoke(
        cli, ["--config", str(company.config_path), "plan", "user0@corp.example"], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert "not supported by this connector: revoke_tokens" in result.stdout


def test_a_system_that_could_not_be_searched_is_a_problem_line(make_company):
    from click.testing import CliRunner

    from offboard.cli._main import cli

    from .. import _fakes

    company = make_company(systems=2, people=1)
    _fakes.add_faults(company.systems["sys1"], (404, None))
    result = CliRunner().invoke(
        cli, ["--config", str(company.config_path), "revoke", "user0@corp.example", "--yes"], catch_exceptions=False
    )
    assert result.exit_code == 3, result.output
    lines = result.stdout.splitlines()
    start = lines.index("Problems:")
    assert lines[start + 1] == "  sys1: could not look for accounts, HTTP 404"
    assert lines[start + 2].endswith(
        "3 of 3 action(s) verified, 1 problem(s) listed above (`offboard status "
        + lines[start + 2].split()[1]
        + "` shows them again)"
    )
