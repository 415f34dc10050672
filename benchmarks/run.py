"""Run the benchmark scenarios and print their tables: ``python -m benchmarks.run [NAME ...]``."""

from __future__ import annotations

import importlib
import sys

SCENARIOS = [
    "bench_engine",
    "bench_audit",
    "bench_bulk",
    "bench_mass",
    "bench_intake",
    "bench_inventory",
    "bench_scaleout",
    "bench_startup",
    "bench_faults",
    "bench_report",
    "bench_signals",
]


def main(argv: list[str]) -> int:
    wanted = argv or SCENARIOS
    for name in wanted:
        name = name if name.startswith("bench_") else f"bench_{name}"
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"benchmarks.{name}":
                print(f"(scenario {name} is not written yet)")
                continue
            raise
        module.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
