"""Start-up: ``offboard --help``'s own time (less the interpreter's) against 300 ms.

``python -m benchmarks.run startup``. Each command runs in a fresh process; the medians of several runs
are compared, so the interpreter's own start-up (``python -c pass``) is subtracted, not counted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ._common import median, report, verdict

ROOT = Path(__file__).resolve().parents[1]
GOAL_MS = 300.0
RUNS = 9


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def measure(runs: int = RUNS) -> dict[str, float]:
    """Median seconds of the bare interpreter, ``offboard --help`` and ``offboard plan --help``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "connectors")])}
    commands = {
        "python": [sys.executable, "-c", "pass"],
        "help": [sys.executable, "-m", "offboard", "--help"],
        "plan_help": [sys.executable, "-m", "offboard", "plan", "--help"],
    }
    for argv in commands.values():  # warm the file cache and .pyc files
        _time(argv, env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            samples[name].append(_time(argv, env))
    return {name: median(values) for name, values in samples.items()}


def run() -> None:
    m = measure()
    own = (m["help"] - m["python"]) * 1000
    plan_own = (m["plan_help"] - m["python"]) * 1000
    report(
        "Start-up (medians of fresh processes; offboard's own time = total - bare interpreter)",
        [
            ("python -c pass", f"{m['python'] * 1000:.0f} ms", "-", ""),
            ("offboard --help, own time", f"{own:.0f} ms", f"< {GOAL_MS:.0f} ms", verdict(own < GOAL_MS)),
            ("offboard plan --help, own time", f"{plan_own:.0f} ms", "-", ""),
            ("ratio own / goal", f"{own / GOAL_MS:.2f}", "< 1", verdict(own < GOAL_MS)),
        ],
    )
