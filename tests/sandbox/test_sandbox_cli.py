"""`sandbox up` as a newcomer runs it: a subprocess with 200 people, then the printed config is used."""

from __future__ import annotations

import os
import select
import subprocess
import sys

import httpx
import yaml

from offboard.config._config import Config


def test_sandbox_up_serves_and_prints_a_usable_config(tmp_path):
    env = {**os.environ, "OFFBOARD_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "offboard.cli._sandbox", "up", "--people", "200", "--seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        ready = proc.stderr.readline().decode()  # the config is flushed to stdout before this line
        assert "sandbox ready: 200 people" in ready, ready
        chunks = []
        while select.select([proc.stdout], [], [], 0.5)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            chunks.append(chunk)
        config = yaml.safe_load(b"".join(chunks).decode())
        parsed = Config.model_validate(config)
        assert set(parsed.connectors) == {"entra", "google_workspace", "slack", "github", "scim", "okta", "aws"}
        slack = config["connectors"]["slack"]["settings"]
        token = open(slack["token"].removeprefix("file:")).read()
        people = yaml.safe_load(open(config["people"][0]["settings"]["path"]))
        assert len(people) == 200
        r = httpx.post(
            slack["api_url"] + "users.lookupByEmail",
            data={"email": people[42]["email"]},
            headers={"Authorization": f"Bearer {token}"},
            trust_env=False,
        )
        assert r.json()["ok"] is True and r.json()["user"]["profile"]["email"] == people[42]["email"]
        scim = config["connectors"]["scim"]["settings"]
        r = httpx.get(
            scim["base_url"] + "/Users",
            params={"count": 5},
            headers={"Authorization": "Bearer " + open(scim["token"].removeprefix("file:")).read()},
            trust_env=False,
        )
        assert r.status_code == 200 and r.json()["totalResults"] > 100
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_sandbox_up_bad_port_is_one_clear_error(tmp_path):
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    busy.listen()
    try:
        r = subprocess.run(
            [sys.executable, "-m", "offboard.cli._sandbox", "up", "--people", "3", "--port-base", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        busy.close()
    assert r.returncode == 2
    assert r.stderr.startswith("error: sandbox: cannot bind") and "Traceback" not in r.stderr
