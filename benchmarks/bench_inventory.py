"""Inventory sync of 100,000 accounts across 5 systems (20,000 each, pages of 500), correlated to 20,000 people.

Runs in a child process so the peak resident memory measured (ru_maxrss) is the sync's own,
and prints wall time, accounts per second and peak memory against the 500 MB goal.

``--planning``: a bulk run of N sandbox people (default 2,000) planned from the inventory
(``revoke_many(..., from_inventory=True)``, a dry run: sync every system, then plan everyone
from what it listed), against the rate-limit bound of the requests it made (as ``bench_bulk``
computes it: the vendors' buckets as the sandbox meters them and the engine's buckets at the
configured limits, whichever is larger) and the busiest simulator's time answering. The
baseline is the same plan by discovery (each person asked of every system), timed on
``--baseline`` people and extrapolated linearly. Each connector is warmed with one ``check()``
before the clock starts (the Okta SDK spends about 30 s building its models on first use on
a loaded 2-core machine; that is start-up, not planning).

``python -m benchmarks.bench_inventory [--planning [--people 2000] [--scale 1] [--baseline 200]]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from ._common import console, report, stopwatch, verdict

SYSTEMS, PER_SYSTEM, PEOPLE, PAGE = 5, 20_000, 20_000, 500

CHILD = textwrap.dedent(f"""
    import json, resource, sys, tempfile, time
    from pathlib import Path
    from offboard import Account, AccountPage, Connector, ConnectorSettings, hookimpl, plugins
    from offboard.config._config import Config
    from offboard.engine._engine import Engine
    from offboard.inventory._inventory import sync

    class Listing(Connector):
        '''A system that lists {PER_SYSTEM} accounts in pages of {PAGE}, built on demand like an API would stream them.'''
        name = "bench_listing"
        class Settings(ConnectorSettings):
            offset: int = 0
        def list_accounts(self, cursor=None):
            start = int(cursor or 0)
            stop = min(start + {PAGE}, {PER_SYSTEM})
            accounts = tuple(
                Account(self.instance, f"{{self.instance}}-{{n:06d}}", f"user{{(n + self.settings.offset) % {PEOPLE + 500}}}@corp.example",
                        f"user{{(n + self.settings.offset) % {PEOPLE + 500}}}@corp.example", n % 17 != 0, n % 997 == 0,
                        {{"employeeId": f"E{{n:06d}}"}})
                for n in range(start, stop))
            return AccountPage(accounts, str(stop) if stop < {PER_SYSTEM} else None)

    class Plugin:
        @hookimpl
        def register_connectors(self, register):
            register(Listing)

    plugins.get_plugin_manager().register(Plugin(), "bench_inventory")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hr = tmp / "hr.json"
        hr.write_text(json.dumps([{{"email": f"user{{i}}@corp.example", "employee_id": f"P{{i}}"}} for i in range({PEOPLE})]))
        config = Config.model_validate({{
            "connectors": {{f"sys{{s}}": {{"type": "bench_listing", "settings": {{"offset": s * 3}}}} for s in range({SYSTEMS})}},
            "people": [{{"type": "hr_export", "settings": {{"path": str(hr)}}}}],
        }})
        engine = Engine.open(config, tmp)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        result = sync(engine)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        engine.close()
    print(json.dumps({{"wall": wall, "peak_kb": peak, "before_kb": before, "accounts": sum(s.accounts for s in result.systems),
                      "matched": sum(s.matched for s in result.systems), "ok": result.ok}}))
""")


def run() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the inventory benchmark failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    peak_mb = out["peak_kb"] / 1024
    report(
        f"Inventory: sync of {out['accounts']:,} accounts across {SYSTEMS} systems, {PEOPLE:,} people",
        [
            ("wall time", f"{out['wall']:.1f} s", "", ""),
            ("accounts per second", f"{out['accounts'] / out['wall']:,.0f}", "", ""),
            ("accounts correlated", f"{out['matched']:,}", "", ""),
            ("peak memory (RSS, whole process)", f"{peak_mb:.0f} MB", "< 500 MB", verdict(peak_mb < 500 and out["ok"])),
            ("memory before the sync", f"{out['before_kb'] / 1024:.0f} MB", "", ""),
        ],
    )


# -- planning a bulk run from the inventory (issue 16) ---------------------------------------------


def _plan_once(company: int, people: int, scale: float, seed: int, from_inventory: bool) -> dict[str, Any]:
    """Plan the first ``people`` of a sandbox company of ``company`` people as one bulk dry run against a fresh
    metered sandbox (pages as large as each vendor allows); wall time, requests and bounds."""
    from offboard.engine._bulk import revoke_many
    from offboard.engine._engine import Engine

    from .bench_bulk import RemoteSandbox, bound, busiest, engine_config
    from .bench_mass import _configured_bound, _counting_bucket

    home = Path(tempfile.mkdtemp(prefix="offboard-bench-planning-"))
    try:
        with RemoteSandbox(company, seed, window_scale=scale, page_cap=0) as sandbox:
            chosen = sandbox.people[:people]
            engine = Engine.open(engine_config(sandbox.config, scale), home)
            engine.bucket_factory = _counting_bucket()
            try:
                engine.check_connectors()
                for name in engine.enabled_connectors():  # warm: the Okta SDK builds its models on first use
                    engine.connector(name).check()
                refs = [(p.emails[0], f"person {n}") for n, p in enumerate(chosen)]
                sandbox.reset()
                for b in engine._buckets.values():  # the engine's buckets start full, as the sandbox's do
                    b._tokens, b._stamp = float(b.burst), time.monotonic()
                cpu, start = time.process_time(), time.monotonic()
                with stopwatch() as wall:
                    result = revoke_many(engine, refs, dry_run=True, from_inventory=from_inventory, sync=True)
                end = time.monotonic()
                stats = sandbox.stats()
                configured = max(
                    (_configured_bound(engine, s, start, end) for s in engine.enabled_connectors()),
                    default=(0.0, "no bucket binds"),
                )
            finally:
                engine.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    systems = stats["systems"]
    return {
        "people": len(chosen),
        "plans": len(result.plans),
        "actions": sum(len(p.actions) for p in result.plans),
        "errors": sum(bool(p.errors) for p in result.plans),
        "wall": wall[0],
        "cpu": time.process_time() - cpu,
        "sandbox_cpu": stats["cpu"],
        "requests": sum(s["requests"] for s in systems.values()),
        "per_system": {name: s["requests"] for name, s in systems.items()},
        "bound": max(bound(systems), configured),
        "busiest": busiest(systems),
        "discovered": dict(result.discovered),
    }


def run_planning(people: int = 2000, scale: float = 1.0, baseline: int = 200, seed: int = 5, floor: float = 5.0) -> Any:
    """Plan ``people`` from the inventory and ``baseline`` of them by discovery; print the comparison."""
    from offboard.config._logging import configure_logging

    configure_logging(-1)
    console.print(
        f"[bold]Planning a bulk run[/]: {people:,} sandbox people x every sandbox system, windows and connector rates "
        "scaled by "
        f"{scale:g}; machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"
    )
    inv = _plan_once(people, people, scale, seed, from_inventory=True)
    disc = _plan_once(people, baseline, scale, seed, from_inventory=False) if baseline else None
    rate_bound, where = inv["bound"]
    sim_floor, sim = inv["busiest"]
    judged = rate_bound >= floor
    ratio = inv["wall"] / rate_bound if rate_bound else float("inf")
    rows = [
        ("people planned (plans, actions)", f"{inv['people']:,} ({inv['plans']:,}, {inv['actions']:,})", "", ""),
        ("plans with a system not searched", f"{inv['errors']}", "0", verdict(inv["errors"] == 0)),
        ("from the inventory: wall (sync + plan)", f"{inv['wall']:.1f} s", "", ""),
        (
            "requests made (per system)",
            f"{inv['requests']:,} (" + ", ".join(f"{k} {v:,}" for k, v in sorted(inv["per_system"].items())) + ")",
            "",
            "",
        ),
        ("people discovered where the inventory could not answer", str(inv["discovered"] or "none"), "", ""),
        (
            "wall / rate-limit bound of those requests",
            f"{inv['wall']:.1f} s / {rate_bound:.1f} s = {ratio:.2f}" if rate_bound else f"{inv['wall']:.1f} s / 0 s",
            "<= 1.2" if judged else f"(bound < {floor:g} s: not judged)",
            verdict(ratio <= 1.2) if judged else "",
        ),
        ("busiest simulator's time answering", f"{sim_floor:.1f} s ({sim})", "", ""),
        ("CPU: engine / sandbox", f"{inv['cpu']:.0f} s / {inv['sandbox_cpu']:.0f} s", "", ""),
    ]
    figures: dict[str, Any] = {"inventory": inv, "scale": scale}
    if disc is not None:
        factor = inv["people"] / disc["people"]
        d_bound = disc["bound"][0]
        rows += [
            (
                f"by discovery, {disc['people']:,} people: wall / bound",
                f"{disc['wall']:.1f} s / {d_bound:.1f} s ({disc['requests']:,} requests)",
                "",
                "",
            ),
            (
                f"by discovery, extrapolated to {inv['people']:,}",
                f"{disc['wall'] * factor:.0f} s ({disc['requests'] * factor:,.0f} requests)",
                "",
                "",
            ),
            ("speed-up of planning from the inventory", f"{disc['wall'] * factor / inv['wall']:.1f}x", "", ""),
        ]
        figures["discovery"] = disc
    report(f"Planning {inv['people']:,} people from the inventory, windows x{scale:g}", rows)
    console.print(f"Rate-limit bound set by {where}.")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_inventory", description=__doc__.splitlines()[0])
    parser.add_argument("--planning", action="store_true", help="plan a bulk run from the inventory (issue 16)")
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--scale", type=float, default=1.0, help="rate-limit window scale (default 1: real windows)")
    parser.add_argument("--baseline", type=int, default=200, help="people planned by discovery (0: none)")
    parser.add_argument("--floor", type=float, default=5.0, help="bounds under this many seconds are not judged")
    args = parser.parse_args(argv)
    if args.planning:
        run_planning(args.people, args.scale, args.baseline, floor=args.floor)
    else:
        run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
