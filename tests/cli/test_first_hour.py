"""A new user's first hour: configuration is found, read-only commands create nothing, prompts never crash."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from offboard.cli._main import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    """No config in the user's config folder, and a working directory without offboard.yaml."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.mark.parametrize(
    "args",
    [
        ("plan", "alice@corp.example"),
        ("revoke", "alice@corp.example", "--yes"),
        ("resume",),
        ("undo", "C1"),
        ("inventory", "sync"),
        ("sweep", "--dry-run"),
    ],
)
def test_commands_that_need_connectors_say_where_they_looked(args, home, no_user_config):
    result = run(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no configuration file found (looked at: ")
    for place in ("--config", "OFFBOARD_CONFIG", str(no_user_config / "offboard.yaml"), str(home / "offboard.yaml")):
        assert place in lines[0]
    assert "pass --config FILE or set OFFBOARD_CONFIG" in lines[0]
    assert not home.exists()


def test_config_is_found_in_the_working_directory_then_the_data_folder(make_company, home, no_user_config):
    company = make_company(systems=1, people=2)
    assert company.config_path is not None
    (no_user_config / "offboard.yaml").write_text(company.config_path.read_text())
    result = run("plan", "user0@corp.example", "--json")
    assert result.exit_code == 0, result.output
    assert '"sys0"' in result.stdout
    (no_user_config / "offboard.yaml").unlink()
    home.mkdir()
    (home / "offboard.yaml").write_text(company.config_path.read_text())
    assert run("plan", "user0@corp.example").exit_code == 0


def test_a_config_without_connectors_names_the_file(tmp_path, home):
    empty = tmp_path / "empty.yaml"
    empty.write_text("protected: [x]\n")
    result = run("--config", str(empty), "plan", "alice@corp.example")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: {empty} (from --config) defines no connectors; add a `connectors:` section (see docs/configuration.md)\n"
    )


def test_global_options_after_the_subcommand(make_company, tmp_path):
    company = make_company(systems=1, people=2)
    other = tmp_path / "elsewhere"
    result = run("plan", "user0@corp.example", "--config", str(company.config_path), "--data-dir", str(other), "-v")
    assert result.exit_code == 0, result.output
    assert "user0" in result.stdout
    result = run("plan", "user0@corp.example", f"--config={company.config_path}", "--json")
    assert result.exit_code == 0 and '"sys0"' in result.stdout


def test_read_only_commands_create_nothing(make_company, home):
    company = make_company(systems=1, people=2)
    result = run("status")
    assert result.exit_code == 2
    assert (
        result.stderr.startswith(f"error: no offboard data at {home}: nothing has run")
        and "OFFBOARD_HOME" in result.stderr
    )
    assert run("--config", str(company.config_path), "plan", "user0@corp.example").exit_code == 0
    assert run("--config", str(company.config_path), "inventory", "show", "user0@corp.example").exit_code == 0
    result = run("audit", "verify")
    assert result.exit_code == 2 and f"no audit log at {home / 'audit'}" in result.stderr
    assert run("audit", "verify", "--json").exit_code == 2
    assert not home.exists()


def test_status_after_a_case_reads_without_writing(make_company, home):
    company = make_company(systems=1, people=2)
    assert run("--config", str(company.config_path), "revoke", "user0@corp.example", "--yes").exit_code == 0
    before = tree(home)
    assert "offboard.db" in before
    result = run("status", "--json")
    assert result.exit_code == 0 and '"person_id": "user0@corp.example"' in result.stdout
    assert run("--config", str(company.config_path), "plan", "user1@corp.example").exit_code == 0
    assert tree(home) == before


def test_revoke_with_stdin_closed_asks_for_yes(make_company, home):
    company = make_company(systems=1, people=2)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'connectors'}"}
    for redirect in ("0<&-", "</dev/null"):
        cmd = f'"{sys.executable}" -m offboard --config "{company.config_path}" revoke user0@corp.example {redirect}'
        proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == "error: not a terminal; pass --yes to revoke without a prompt"
        assert "AttributeError" not in proc.stderr


def test_a_mistyped_subcommand_gets_a_suggestion():
    result = run("revok", "x")
    assert result.exit_code == 2 and "No such command 'revok'. Did you mean 'revoke'?" in result.stderr
    result = run("zzzz")
    assert result.exit_code == 2 and "Did you mean" not in result.stderr


def test_verify_tells_a_missing_log_from_a_deleted_one(make_company, home):
    company = make_company(systems=1, people=1)
    assert run("--config", str(company.config_path), "revoke", "user0@corp.example", "--yes").exit_code == 0
    assert run("audit", "verify").exit_code == 0
    (home / "audit" / "entries.jsonl").unlink()  # deleted beside its checkpoints: tampering
    assert run("audit", "verify").exit_code == 1
