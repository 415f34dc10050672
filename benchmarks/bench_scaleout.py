"""Scale-out: bulk throughput with 1, 2 and 4 ``offboard worker`` processes on PostgreSQL.

Each run gets a fresh sandbox company (in its own process, rate limits off), a fresh
PostgreSQL schema and data directory, and opens one case per person with
``execution: distributed`` (the jobs are queued with the cases); then N workers are
started and the clock runs until every case has closed. Connector rates are set far
above what the machine can send, so the shared (PostgreSQL) buckets never make anyone
wait but are still consulted on every request, as in production.

``python -m benchmarks.bench_scaleout [--people 100] [--workers 1,2,4] [--concurrency 8] [--latency 25]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from ._common import console, stopwatch
from .bench_bulk import RemoteSandbox, _wide, plan_all

PG_URL = os.environ.get("OFFBOARD_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PEOPLE, WORKERS, CONCURRENCY, LATENCY, SEED = 100, (1, 2, 4), 8, 25.0, 9
UNBOUNDED = 100_000.0  # requests per second: far above anything this machine can send


def _schema() -> tuple[str, Any]:
    import sqlalchemy as sa

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        raise SystemExit(f"error: PostgreSQL is not reachable at {PG_URL}: {exc.orig}") from None
    return schema, admin


def _drop(schema: str, admin: Any) -> None:
    import sqlalchemy as sa

    with admin.begin() as conn:
        conn.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
    admin.dispose()


def _start_worker(config: Path, home: Path, concurrency: int) -> subprocess.Popen[str]:
    env = {**os.environ, "OFFBOARD_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "offboard", "--config", str(config), "worker", "--concurrency", str(concurrency)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(procs: list[subprocess.Popen[str]]) -> list[str]:
    """Stop workers with SIGTERM; return the stderr of any that failed."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    failures = []
    for proc in procs:
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode not in (0, -signal.SIGTERM):
            lines = (err or "").strip().splitlines()
            failures.append(f"exit {proc.returncode}: {lines[-1] if lines else 'no output'}")
    return failures


def one_run(workers: int, people: int, concurrency: int, latency_ms: float, seed: int) -> dict[str, Any]:
    """Open ``people`` cases, start ``workers`` workers, time until every case is closed."""
    import sqlalchemy as sa
    import yaml

    from offboard.config._config import Config
    from offboard.engine._distributed import attach
    from offboard.engine._engine import Engine

    schema, admin = _schema()
    home = Path(tempfile.mkdtemp(prefix="offboard-bench-scaleout-"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    procs: list[subprocess.Popen[str]] = []
    try:
        with RemoteSandbox(people, seed, rate_limits=False, latency_ms=latency_ms) as sandbox:
            raw = dict(sandbox.config, store=url, execution="distributed")
            raw["connectors"] = {
                name: {**item, "rate": UNBOUNDED, "rates": {"*": UNBOUNDED}} for name, item in raw["connectors"].items()
            }
            config_path = home / "offboard.yaml"
            config_path.write_text(yaml.safe_dump(raw, sort_keys=False))
            engine = Engine.open(Config.model_validate(raw), home)
            try:
                attach(engine)
                engine.dispatcher.poll = 0.1
                plans, case_ids = plan_all(engine, sandbox.people)
                with stopwatch() as wall:
                    procs = [_start_worker(config_path, home, concurrency) for _ in range(workers)]
                    results = engine.run_cases(case_ids)
                with engine.store._db.connect() as conn:
                    first, last = conn.execute(
                        sa.text("select (select min(requested_at) from actions), (select max(closed_at) from cases)")
                    ).one()
            finally:
                engine.close()
    finally:
        failures = _stop(procs)
        _drop(schema, admin)
        shutil.rmtree(home, ignore_errors=True)
    actions = sum(len(p.actions) for p in plans)
    return {
        "workers": workers,
        "people": len(plans),
        "actions": actions,
        "wall": wall[0],
        "busy": (last - first).total_seconds() if first and last else float("nan"),
        "status": Counter(r.status.value for r in results),
        "failures": failures,
    }


def run(
    people: int = PEOPLE,
    workers: tuple[int, ...] = WORKERS,
    concurrency: int = CONCURRENCY,
    latency_ms: float = LATENCY,
    seed: int = SEED,
) -> list[dict[str, Any]]:
    """Run the scaling table; print it; return one dict per worker count."""
    from rich.table import Table

    from offboard.config._logging import configure_logging

    configure_logging(-1)
    console.print(
        f"[bold]Scale-out[/]: {people} people x 5 sandbox systems (rate limits off, {latency_ms:g} ms per request), "
        f"PostgreSQL store, `offboard worker --concurrency {concurrency}` processes. "
        f"This machine has {os.cpu_count()} cores, shared by the workers, PostgreSQL and the sandbox: "
        "past 2 busy processes, more workers add concurrency, not CPU."
    )
    rows = [one_run(n, people, concurrency, latency_ms, seed) for n in workers]
    table = Table(
        title=f"Scale-out: {rows[0]['people']} cases ({rows[0]['actions']} actions), workers x{concurrency} jobs each",
        title_justify="left",
    )
    for column in (
        "workers",
        "wall time",
        "cases/s",
        "actions/s",
        "speed-up vs 1",
        "first action -> last close",
        "cases",
    ):
        table.add_column(column)
    base = rows[0]["wall"] if rows[0]["workers"] == 1 else None
    for r in rows:
        r["cases_per_s"] = r["people"] / r["wall"]
        r["speedup"] = base / r["wall"] if base else None
        table.add_row(
            str(r["workers"]),
            f"{r['wall']:.1f} s",
            f"{r['cases_per_s']:.1f}",
            f"{r['actions'] / r['wall']:.0f}",
            f"{r['speedup']:.2f}x" if r["speedup"] else "-",
            f"{r['busy']:.1f} s",
            ", ".join(f"{n} {s}" for s, n in r["status"].items()),
        )
    with _wide():
        console.print(table)
    console.print(
        "wall time runs from starting the workers (their start-up included) to the last case closed; "
        "the next column is from the first action requested to the last case closed, from the store."
    )
    for r in rows:
        for failure in r["failures"]:
            console.print(f"[red]a worker failed ({r['workers']} workers): {failure}[/]")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scaleout", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=PEOPLE)
    parser.add_argument(
        "--workers", default=",".join(map(str, WORKERS)), help="worker counts, comma-separated (default 1,2,4)"
    )
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="jobs per worker at once")
    parser.add_argument("--latency", type=float, default=LATENCY, help="sandbox latency per request, ms")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        counts = tuple(int(n) for n in args.workers.split(","))
    except ValueError:
        parser.error(f"--workers must be numbers separated by commas, not {args.workers!r}")
    if args.people < 1 or args.concurrency < 1 or not counts or min(counts) < 1:
        parser.error("--people, --concurrency and every worker count must be >= 1")
    run(args.people, counts, args.concurrency, args.latency, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
