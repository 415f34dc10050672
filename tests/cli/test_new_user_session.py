"""A new user's first session, in a pseudo-terminal: fresh OFFBOARD_HOME, no configuration, the README's
commands in order. Each works or stops with exit 2 and a message that says what to do; read-only commands
create nothing."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parents[2]
RC = re.compile(r"@@rc=(\d+)@@")
WHAT_TO_DO = re.compile(
    r"error: .*(pass --config FILE or set OFFBOARD_CONFIG|point OFFBOARD_CONFIG at|`offboard status` lists|"
    r"check --data-dir / OFFBOARD_HOME)"
)
READ_ONLY = (
    "offboard status",
    "offboard plan",
    "offboard config",
    "offboard audit verify",
    "offboard inventory orphans",
)


def readme_commands() -> list[str]:
    """The README's shell commands that run offboard (or set its environment), in order, one per entry."""
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            for part in (p.strip() for p in line.split("&&")):
                if part.startswith(("offboard ", "export OFFBOARD")):
                    commands.append(part)
    return commands


def snapshot(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if p.name != "offboard.log"}


@pytest.fixture
def shell(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "offboard"
    launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m offboard "$@"\n')
    launcher.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path / "user"),
        "XDG_CONFIG_HOME": str(tmp_path / "user" / ".config"),
        "OFFBOARD_HOME": str(tmp_path / "home"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "connectors")]),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "PS1": "$ ",
    }
    child = pexpect.spawn(
        "bash", ["--norc", "--noprofile"], cwd=str(work), env=env, encoding="utf-8", dimensions=(50, 160), timeout=180
    )
    child.expect_exact("$ ")
    yield child
    child.close(force=True)


def run(child, command: str) -> tuple[int, str]:
    child.sendline(f'{command}; echo "@@rc=$?@@"')
    child.expect(RC)
    return int(child.match.group(1)), child.before


def test_the_readme_in_order_on_a_fresh_machine(shell, tmp_path):
    home = tmp_path / "home"
    commands = readme_commands()
    assert commands[0] == "offboard demo" and "offboard sandbox up" in commands
    assert "offboard config check" in commands and "offboard audit verify" in commands

    code, output = run(shell, "offboard status")  # before anything: a clear message, nothing created
    assert code == 2 and WHAT_TO_DO.search(output), output
    assert not home.exists()

    seen = []
    for command in commands:
        if command == "offboard sandbox up":  # serves until interrupted
            shell.sendline(f'{command}; echo "@@rc=$?@@"')
            shell.expect("sandbox ready: ")
            shell.sendintr()
            shell.expect(RC)
            code, output = int(shell.match.group(1)), shell.before
            assert code in (0, 130), output
        else:
            before = snapshot(home)
            code, output = run(shell, command)
            if command.startswith(READ_ONLY):
                assert snapshot(home) == before, f"{command} changed {home}"
        seen.append((command, code))
        assert "Traceback" not in output and "unexpected" not in output, f"{command}:\n{output}"
        assert code in (0, 2), f"{command} exited {code}:\n{output}"
        if code == 2:
            assert WHAT_TO_DO.search(output), f"{command} stopped without saying what to do:\n{output}"
        if command == "offboard demo":
            assert code == 0 and "complete" in output and (home / "audit").is_dir()
    assert ("offboard audit verify", 0) in seen
    assert ("offboard config check", 2) in seen and ("offboard undo CASE", 2) in seen


def test_a_spinner_per_system_while_discovering(shell, make_company):
    company = make_company(systems=2, people=1)
    config = company.write_config(sys0={"latency_ms": 1500}, sys1={"latency_ms": 1500})
    shell.sendline(f'offboard --config {config} plan user0@corp.example; echo "@@rc=$?@@"')
    shell.expect(r"sys0\s+looking for accounts")  # on the screen before any system has answered
    shell.expect(RC)
    assert int(shell.match.group(1)) == 0
    assert "Plan for user0@corp.example" in shell.before
