"""``--json`` on every command, with ISO 8601 timestamps."""

from __future__ import annotations

import json
import re

import click
from click.testing import CliRunner

from offboard.cli._main import cli

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def leaf_commands() -> list[tuple[str, click.Command]]:
    ctx = click.Context(cli)
    found = []

    def walk(command: click.Command, path: list[str]) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                walk(sub, [*path, name])
        else:
            found.append((" ".join(path), command))

    walk(cli, [])
    return found


def test_every_command_takes_json():
    leaves = leaf_commands()
    names = {name for name, _ in leaves}
    assert {"audit evidence", "audit report", "demo", "policies list", "serve", "worker", "config show"} <= names
    missing = [name for name, command in leaves if not any("--json" in p.opts for p in command.params)]
    assert missing == []


def test_json_timestamps_are_iso_8601(make_company):
    company = make_company(systems=1, people=1)
    assert run("--config", str(company.config_path), "revoke", "user0@corp.example", "--yes").exit_code == 0
    rows = json.loads(run("status", "--json").stdout)
    assert rows and ISO.match(rows[0]["created_at"]) and ISO.match(rows[0]["closed_at"])


def test_policies_list_and_demo_as_json(home):
    policies = json.loads(run("policies", "list", "--json").stdout)
    assert {p["name"] for p in policies} >= {"default", "contractor"}
    assert all(p["actions"] for p in policies)
    result = run("demo", "--people", "4", "--latency", "1", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # only JSON on stdout: no tables, no progress
    assert report["case"]["status"] == "complete" and report["data_dir"] == str(home)
    assert set(report["read_back"]) == {o["system"] for o in report["case"]["actions"]}
    assert not (home / "demo").exists()  # no sandbox secrets or a config for closed ports left behind
