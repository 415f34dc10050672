"""Faults: 200 people x 5 sandbox systems under 15% 5xx, 5% timeouts and a 429 storm per system.

Two runs in one invocation, each against a fresh sandbox in its own process (as in
``bench_bulk``, whose rate-limit scaling it shares): first with the faults off, then with
them on (``error_rate`` 0.15, ``timeout_rate`` 0.05 with the sandbox hanging
``--timeout`` seconds before it drops the connection, and a ``storm_rate`` that starts
about one storm of 20 rate-limited answers per system). Goals: every case complete in
both runs, and the faulty run's wall time at most 1.5x the clean one's. It prints the
retries per action (p50, p99, max), from the attempts the store recorded.

``python -m benchmarks.bench_faults [--people 200] [--scale 0.01] [--timeout 1.0]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from ._common import console, report, stopwatch, verdict
from .bench_bulk import SEED, RemoteSandbox, engine_config, plan_all

PEOPLE, SCALE, TIMEOUT, RATIO_GOAL = 200, 0.01, 1.0, 1.5
REQUESTS_PER_PERSON = 6  # about how many requests one person costs one system (discover, writes, read-backs)


def _percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


def _run(people: int, scale: float, knobs: dict[str, Any]) -> dict[str, Any]:
    from offboard.engine._engine import Engine

    home = Path(tempfile.mkdtemp(prefix="offboard-bench-faults-"))
    with RemoteSandbox(people, SEED, window_scale=scale, **knobs) as sandbox:
        engine = Engine.open(engine_config(sandbox.config, scale), home)
        try:
            plans, case_ids = plan_all(engine, sandbox.people)
            sandbox.reset()
            with stopwatch() as ran:
                results = engine.run_cases(case_ids)
            stats = sandbox.stats()["systems"]
            retries = [max(0, (row["attempts"] or 1) - 1) for c in case_ids for row in engine.store.actions(c)]
        finally:
            engine.close()
            shutil.rmtree(home, ignore_errors=True)
    return {
        "wall": ran[0],
        "people": len(plans),
        "actions": len(retries),
        "status": Counter(r.status.value for r in results),
        "incomplete": [r.detail.splitlines()[0] for r in results if not r.ok],
        "retries": retries,
        "throttled": sum(s["throttled"] for s in stats.values()),
        "requests": sum(s["requests"] for s in stats.values()),
    }


def run(people: int = PEOPLE, scale: float = SCALE, timeout: float = TIMEOUT) -> bool:
    clean = _run(people, scale, {})
    faults = {
        "error_rate": 0.15,
        "timeout_rate": 0.05,
        "timeout_seconds": timeout,
        "storm_rate": 1.0 / (people * REQUESTS_PER_PERSON),
        "storm_length": 20,
    }
    faulty = _run(people, scale, faults)
    ratio = faulty["wall"] / clean["wall"]
    complete = all(not r["incomplete"] and r["status"].get("complete", 0) == r["people"] for r in (clean, faulty))
    retries = faulty["retries"]
    rows = [
        ("people x systems", f"{faulty['people']} x 5, {faulty['actions']} actions", "", ""),
        ("wall, faults off", f"{clean['wall']:.1f} s", "", ""),
        ("wall, faults on", f"{faulty['wall']:.1f} s", "", ""),
        ("ratio (on / off)", f"{ratio:.2f}", f"<= {RATIO_GOAL}", verdict(ratio <= RATIO_GOAL)),
        (
            "cases complete",
            f"{clean['status'].get('complete', 0)} / {faulty['status'].get('complete', 0)} of {faulty['people']}",
            "all, both runs",
            verdict(complete),
        ),
        (
            "retries per action (faults on)",
            f"p50 {_percentile(retries, 0.5)}, p99 {_percentile(retries, 0.99)}, max {max(retries, default=0)}",
            "",
            "",
        ),
        ("rate-limited answers (faults on)", f"{faulty['throttled']} of {faulty['requests']} requests", "", ""),
    ]
    report("Faults: bulk revoke under failing vendors", rows)
    for line in (clean["incomplete"] + faulty["incomplete"])[:5]:
        console.print(f"  incomplete: {line}")
    return ratio <= RATIO_GOAL and complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_faults", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=PEOPLE, help=f"people in the sandbox company (default {PEOPLE})")
    parser.add_argument("--scale", type=float, default=SCALE, help=f"rate-limit window scale (default {SCALE})")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds a timed-out request hangs")
    args = parser.parse_args(argv)
    return 0 if run(args.people, args.scale, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
