"""docs/sandbox.md, run as written (a docs-examples test, as datasette does for its docs).

Every `$ offboard ...` line of the page's console blocks (and the `# or:` alternative beside it) is
started as a new user would, its printed configuration compared with the page's, saved with
`--config-out` and used by offboard from that folder; Ctrl-C ends it with exit 0 and its secrets are
gone. The page's Python example is executed as it stands.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "sandbox.md"
CONSOLE = re.compile(r"```console\n(.*?)```", re.S)
PYTHON = re.compile(r"```python\n(.*?)```", re.S)


def page_commands() -> list[tuple[list[str], str]]:
    """(command, the output the page shows after it) for every offboard command in a console block."""
    found = []
    for block in CONSOLE.findall(PAGE.read_text()):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ "):
                continue
            shown = "\n".join(rest for rest in lines[i + 1 :] if not rest.startswith("$ "))
            command, _, comment = line[2:].partition("#")
            found.append((command.split(), shown))
            alternative = comment.strip().removeprefix("or:").strip()
            if alternative.startswith(("offboard ", "python -m offboard")):
                found.append((alternative.split(), shown))
    return found


def argv(words: list[str]) -> list[str]:
    """The page's command as this checkout runs it: `offboard` and `python` are this interpreter."""
    if words[0] == "offboard":
        return [sys.executable, "-m", "offboard", *words[1:]]
    if words[0] in ("python", "python3"):
        return [sys.executable, *words[1:]]
    raise AssertionError(f"not an offboard command: {words}")


def read_until_ready(proc: subprocess.Popen, deadline: float) -> tuple[str, str]:
    """stdout and stderr until the `sandbox ready` line (the configuration is flushed before it)."""
    out, err = b"", b""
    while b"sandbox ready" not in err:
        assert proc.poll() is None, (out + err).decode()
        assert time.monotonic() < deadline, "the sandbox did not say it was ready"
        for stream in select.select([proc.stdout, proc.stderr], [], [], 0.5)[0]:
            chunk = os.read(stream.fileno(), 65536)
            if stream is proc.stdout:
                out += chunk
            else:
                err += chunk
    while select.select([proc.stdout], [], [], 0.5)[0]:
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        out += chunk
    return out.decode(), err.decode()


def test_the_page_shows_offboard_commands():
    commands = page_commands()
    assert [words[:3] for words, _ in commands] == [
        ["offboard", "sandbox", "up"],
        ["python", "-m", "offboard.cli._sandbox"],
    ]


@pytest.mark.parametrize("words,shown", page_commands(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_each_sandbox_command_on_the_page_runs_as_shown(words, shown, tmp_path):
    env = {**os.environ, "OFFBOARD_HOME": str(tmp_path / "home")}
    env.pop("OFFBOARD_CONFIG", None)
    # "Save the YAML as your config file (or pass `--config-out offboard.yaml`) and point offboard at it."
    proc = subprocess.Popen(
        [*argv(words), "--config-out", "offboard.yaml"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = read_until_ready(proc, time.monotonic() + 120)
        printed = yaml.safe_load(out)
        assert yaml.safe_load((tmp_path / "offboard.yaml").read_text()) == printed
        # The shape the page shows: its top-level keys, connector names and settings, people and protected.
        top = [line.split(":")[0] for line in shown.splitlines() if re.match(r"^[a-z_]+:", line)]
        assert set(top) - {"sandbox ready"} <= set(printed), (top, list(printed))
        assert {"entra", "google_workspace"} <= set(printed["connectors"])
        entra = printed["connectors"]["entra"]["settings"]
        shown_keys = re.findall(r"(\w+): ", shown.split("entra:")[1].split("google_workspace:")[0])
        assert set(shown_keys) - {"type", "settings"} <= set(entra), shown_keys
        assert entra["client_secret"].startswith("file:") and entra["authority_url"].startswith("https://localhost:")
        assert printed["people"][0]["type"] == "hr_export"
        assert printed["protected"] == yaml.safe_load(re.search(r"^protected: (.*)$", shown, re.M).group(1))
        people = int(words[words.index("--people") + 1])
        assert re.search(rf"sandbox ready: {people} people; entra https://localhost:\d+, .*Ctrl-C to stop", err), err

        # offboard, run from that folder, finds ./offboard.yaml and works against the sandbox.
        hr = json.loads(Path(printed["people"][0]["settings"]["path"]).read_text())
        leaver = next(p["email"] for p in hr if p.get("type") == "employee" and p.get("active", True))
        plan = subprocess.run(
            [sys.executable, "-m", "offboard", "plan", leaver, "--json"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert plan.returncode == 0, plan.stderr
        planned = json.loads(plan.stdout)
        assert planned["actions"] and not planned.get("errors"), planned
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        code = proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert code == 0  # "Exit codes: 0 after Ctrl-C/SIGTERM"
    secret = Path(entra["client_secret"].removeprefix("file:"))
    assert not secret.exists()  # "a private temporary directory that is removed when the sandbox stops"


def test_the_python_example_runs_as_written():
    (example,) = PYTHON.findall(PAGE.read_text())
    namespace: dict = {}
    exec(compile(example, str(PAGE), "exec"), namespace)  # noqa: S102  (the page's own code)
    assert set(namespace["config"]) >= {"connectors", "people", "protected"}
    assert len(namespace["sb"].company.people) == 50
    slack = namespace["slack"]
    assert slack.account(namespace["ada"])["active"] is True  # a dict, as the page says
    assert "admin.users:write" not in slack.granted
