"""``offboard --help`` comes up without the heavy libraries (its time is in benchmarks/bench_startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
sys.argv = ["offboard", "--help"]
from offboard.cli._main import main
try:
    main()
except SystemExit:
    pass
heavy = ["pydantic", "sqlalchemy", "structlog", "rich", "yaml", "pluggy", "offboard.engine", "offboard.config._config"]
print(" ".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def test_help_imports_no_heavy_library():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "connectors")])}
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "config" in proc.stdout and "Show the effective configuration" in proc.stdout
    assert proc.stderr.strip() == ""


def test_the_benchmark_measures_against_the_goal():
    from benchmarks import bench_startup

    m = bench_startup.measure(runs=1)
    assert set(m) == {"python", "help", "plan_help"} and all(v > 0 for v in m.values())
    assert bench_startup.GOAL_MS == 300.0
