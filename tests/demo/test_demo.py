"""The README's first command, as a newcomer runs it, and what it leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys


def _offboard(*args, home):
    env = {k: v for k, v in os.environ.items() if k != "OFFBOARD_CONFIG"}
    env["OFFBOARD_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "offboard", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_demo_revokes_everywhere_and_leaves_a_verifiable_record(home):
    demo = _offboard("demo", home=home)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "complete" in demo.stdout
    for system in ("entra", "google_workspace", "slack", "github", "scim", "okta", "aws"):
        assert system in demo.stdout
    assert "Traceback" not in demo.stderr
    status = _offboard("status", "--json", home=home)
    assert status.returncode == 0
    assert '"complete"' in status.stdout
    verify = _offboard("audit", "verify", home=home)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_demo_scales_up(home):
    demo = _offboard("demo", "--people", "120", "--latency", "5", home=home)
    assert demo.returncode == 0, demo.stdout + demo.stderr
