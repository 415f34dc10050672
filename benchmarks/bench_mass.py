"""Mass termination: N people x 5 sandbox systems, critical-first, against the ETA printed before.

The bulk scenario (``bench_bulk``) measures the whole run against the rate-limit bound.
This one measures what a layoff cares about: **when the last person lost access** on each
system. Everyone is planned as one bulk run (``engine.plan(..., bulk=True)``: implied
actions covered, connectors told to spend the fewest calls), the ETA is computed
(``engine.estimate``, what ``offboard plan --from-file`` prints), then the batch runs
critical-first (``engine.run_cases``) while the sandbox, in its own process, stamps every
served request.

Bounds, per system, from the requests the sandbox served and its limits (windows scaled
by ``--scale``, the connectors' rates divided by it, as in ``bench_bulk``):

- **critical bound**: the tokens spent by requests served until that system's last
  critical action ended (the access-cutting calls alone), at each bucket's rate after its
  burst; the largest bucket, over the vendor's buckets as the sandbox meters them and the
  engine's own buckets at the configured limits (the connectors' defaults, which are the
  vendors' published limits; where they are stricter than the sandbox's model, as Graph's
  20/s against Entra's resource units, they bind). Goal: time to the last access cut <= 1.10x
  this bound;
- **all-actions bound**: the same over the whole run (vendor and configured buckets); goal:
  wall <= 1.10x its largest;
- under 1% of requests answered 429 (or the vendor's 403 rate-limit answer);
- the ETA (access cut for everyone; every action done) within 15% of the measured times;
- peak memory (RSS) of the engine process and of the sandbox process.

A system whose bound is under ``--floor`` seconds is not limited by its vendor at this
scale (the engine's own speed decides); its ratio is printed but not judged.

The five systems are the issue's (Entra ID, Google Workspace, Slack, GitHub, SCIM); ``--systems all`` adds
the sandbox's Okta and AWS IAM, ``--systems okta,slack`` picks some.

``python -m benchmarks.bench_mass [--people 10000] [--scale 0.05] [--floor 5] [--from-inventory] [--systems ...]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._common import console, report, stopwatch, verdict
from .bench_bulk import RemoteSandbox, _print_buckets, _wide, bound, engine_config, throttled_share

PEOPLE, SCALE, SEED, FLOOR = 10_000, 0.05, 5, 5.0
SYSTEMS = ("entra", "google_workspace", "slack", "github", "scim")


def _system_bound(stats: dict[str, Any]) -> tuple[float, str]:
    """The largest bucket's seconds for one system's stats, and that bucket."""
    return bound({"": stats})


def _counting_bucket() -> Any:
    """A TokenBucket that stamps every token it hands out (monotonic time), for the configured-limit bound."""
    from offboard.engine._ratelimit import TokenBucket

    class CountingBucket(TokenBucket):
        def __init__(self, *args: Any, **kw: Any):
            super().__init__(*args, **kw)
            self.stamps: list[float] = []

        def acquire(self, sleep: Any = time.sleep) -> float:
            waited = super().acquire(sleep)
            self.stamps.append(time.monotonic())
            return waited

    return CountingBucket


def _configured_bound(engine: Any, system: str, since: float, until: float) -> tuple[float, str]:
    """Seconds the tokens taken from ``system``'s engine buckets between ``since`` and ``until`` need at their
    rates after the burst: the bound set by the configured limits (the vendors' published defaults)."""
    best, where = 0.0, "no bucket binds"
    for name, bucket in engine._buckets.items():
        if name != system and not name.startswith(f"{system}:") or not bucket.rate:
            continue
        n = sum(1 for t in bucket.stamps if since <= t <= until)
        need = max(0.0, n - bucket.burst) / bucket.rate
        if need > best:
            best, where = need, f"engine {name}: {n} at {bucket.rate:g}/s, burst {bucket.burst}"
    return best, where


def _only(config: dict[str, Any], systems: tuple[str, ...] | None) -> dict[str, Any]:
    """The sandbox's config with only ``systems`` enabled (None: all of them)."""
    if systems is None:
        return config
    unknown = set(systems) - set(config["connectors"])
    if unknown:
        raise SystemExit(
            f"--systems: the sandbox has no {', '.join(sorted(unknown))} (it has: "
            f"{', '.join(sorted(config['connectors']))})"
        )
    return {**config, "connectors": {k: v for k, v in config["connectors"].items() if k in systems}}


def _mass(
    people: int,
    scale: float,
    seed: int,
    latency_ms: float,
    from_inventory: bool = False,
    systems: tuple[str, ...] | None = SYSTEMS,
) -> dict[str, Any]:
    from offboard.engine._bulk import revoke_many
    from offboard.engine._engine import Engine
    from offboard.inventory._sweep import successors_staying

    out: dict[str, Any] = {}
    home = Path(tempfile.mkdtemp(prefix="offboard-bench-mass-"))
    # Listing every system pages through it: pages as large as each vendor allows, as bench_inventory lists
    # (the sandbox's default of 4 a page is a pagination test, and would make the listing take most of an hour).
    knobs = {"page_cap": 0} if from_inventory else {}
    with RemoteSandbox(people, seed, timeline=True, window_scale=scale, latency_ms=latency_ms, **knobs) as sandbox:
        engine = Engine.open(engine_config(_only(sandbox.config, systems), scale), home)
        engine.bucket_factory = _counting_bucket()
        try:
            # As `offboard revoke --from-file` does: a manager who leaves in the same run is replaced as the
            # handover target by the first manager up the chain who stays (Gmail refuses a suspended delegate).
            chosen, _ = successors_staying(sandbox.people[:people])
            if from_inventory:  # as `revoke --from-file --from-inventory` plans: list every system, then plan
                refs = [(p.emails[0], f"person {n}") for n, p in enumerate(sandbox.people[:people])]
                with stopwatch() as planned:
                    plans = revoke_many(engine, refs, dry_run=True, from_inventory=True, sync=True).plans
            else:
                with stopwatch() as planned, ThreadPoolExecutor(8, thread_name_prefix="bench-plan") as pool:
                    plans = list(pool.map(lambda p: engine.plan(p, bulk=True), chosen))
            out["plan_wall"] = planned[0]
            eta = engine.estimate(plans, latency=0.0)
            out["eta"] = eta
            case_ids = [engine.open_case(plan, trigger="bench", reason="mass benchmark") for plan in plans]
            sandbox.reset()
            for bucket in engine._buckets.values():  # the engine's buckets start full, as the sandbox's do
                bucket._tokens, bucket._stamp = float(bucket.burst), time.monotonic()
            cpu = time.process_time()
            start_wall, start = time.time(), time.monotonic()
            with stopwatch() as ran:
                results = engine.run_cases(case_ids)
            timing = dict(engine.last_timing)
            out["wall"] = ran[0]
            out["engine_cpu"] = time.process_time() - cpu
            out["timing"] = timing
            # per system: the wall time its last critical action ended (engine.monotonic is time.monotonic);
            # measured from the call to run_cases, so loading the batch's actions counts against the engine
            offset = start_wall - start
            cut_wall = {s: offset + t.started + t.access_cut for s, t in timing.items() if t.access_cut is not None}
            out["cut"] = {s: t.started - start + t.access_cut for s, t in timing.items() if t.access_cut is not None}
            out["end"] = {s: t.started - start + (t.cleanup_end or 0.0) for s, t in timing.items()}
            out["configured"] = {
                s: _configured_bound(engine, s, start, t.started + t.access_cut)
                for s, t in timing.items()
                if t.access_cut is not None
            }
            # over the whole run, as the vendor's buckets count it: the cases' closing checks read every system
            # after its last action, and those reads are calls the run needs as much as the actions' own
            out["configured_all"] = max(
                (_configured_bound(engine, s, start, start + ran[0]) for s in timing),
                default=(0.0, "no bucket binds"),
            )
            out["critical"] = sandbox.stats_until(cut_wall)
            out["all"] = sandbox.stats_until({})
        finally:
            engine.close()
            shutil.rmtree(home, ignore_errors=True)
    out["people"] = len(plans)
    out["actions"] = sum(len(p.actions) for p in plans)
    out["covered"] = sum(len(p.covered) for p in plans)
    out["status"] = Counter(r.status.value for r in results)
    out["incomplete"] = [r.detail.splitlines()[0] for r in results if not r.ok]
    out["engine_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def run(
    people: int = PEOPLE,
    scale: float = SCALE,
    seed: int = SEED,
    latency_ms: float = 0.0,
    floor: float = FLOOR,
    from_inventory: bool = False,
    systems: tuple[str, ...] | None = SYSTEMS,
) -> dict[str, Any]:
    """Run the scenario; print the table; return the figures."""
    from offboard.config._logging import configure_logging
    from offboard.engine._eta import format_seconds

    configure_logging(-1)
    console.print(
        f"[bold]Mass termination[/]: {people:,} people x {len(systems) if systems else 'all'} sandbox systems "
        f"({', '.join(systems) if systems else 'every one'}), critical-first, vendors' default limits "
        f"with windows and connector rates scaled by {scale:g}; machine: {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the start"
    )
    m = _mass(people, scale, seed, latency_ms, from_inventory, systems)
    eta = m["eta"]
    crit_stats, all_stats = m["critical"]["systems"], m["all"]["systems"]
    throttled, requests = throttled_share(all_stats)
    share = throttled / requests if requests else 0.0
    total_bound, total_where = max(bound(all_stats), m["configured_all"])
    complete = m["status"].get("complete", 0)
    rows = [
        ("people, actions, covered", f"{m['people']:,}, {m['actions']:,}, {m['covered']:,}", "", ""),
        ("cases complete", f"{complete:,} of {m['people']:,}", "all", verdict(complete == m["people"])),
    ]
    figures: dict[str, Any] = {"people": m["people"], "scale": scale, "systems": {}}
    ratios_ok = True
    by_eta = {s.system: s for s in eta.systems}
    for system in sorted(m["cut"]):
        cut_at, end_at = m["cut"][system], m["end"][system]
        vendor_bound, where = _system_bound(crit_stats[system])
        configured, configured_at = m["configured"].get(system, (0.0, ""))
        crit_bound = max(vendor_bound, configured)
        where = where if vendor_bound >= configured else configured_at
        kind = "vendor" if vendor_bound >= configured else "configured"
        judged = crit_bound >= floor
        ratio = cut_at / crit_bound if crit_bound else float("inf")
        ok = ratio <= 1.10
        ratios_ok &= ok or not judged
        e = by_eta.get(system)
        rows.append(
            (
                f"{system}: last access cut / critical bound ({kind})",
                f"{cut_at:.1f} s / {crit_bound:.1f} s = {ratio:.2f}" if crit_bound else f"{cut_at:.1f} s / 0",
                "<= 1.10" if judged else f"(bound < {floor:g} s: not judged)",
                verdict(ok) if judged else "",
            )
        )
        rows.append(
            (
                f"{system}: ETA access cut / cleanup end (measured)",
                f"{format_seconds(e.access_cut) if e else '-'} / {format_seconds(e.cleanup_end) if e else '-'} "
                f"({format_seconds(cut_at)} / {format_seconds(end_at)})",
                f"binding: {e.binding} ({e.limit})" if e else "",
                "",
            )
        )
        figures["systems"][system] = {
            "access_cut": cut_at,
            "cleanup_end": end_at,
            "critical_bound": crit_bound,
            "critical_bound_at": where,
            "critical_bound_vendor": vendor_bound,
            "critical_bound_configured": configured,
            "eta_access_cut": e.access_cut if e else None,
            "eta_cleanup_end": e.cleanup_end if e else None,
        }
    cut = max(m["cut"].values(), default=0.0)
    eta_cut_err = abs(eta.access_cut - cut) / cut if cut else 0.0
    eta_end_err = abs(eta.cleanup_end - m["wall"]) / m["wall"] if m["wall"] else 0.0
    ratio_all = m["wall"] / total_bound if total_bound else float("inf")
    rows += [
        ("critical phases: every system's ratio", "see above", "<= 1.10", verdict(ratios_ok)),
        ("everyone's access cut (last system)", f"{cut:.1f} s", "", ""),
        (
            "wall time (engine.run_cases) / all-actions bound",
            f"{m['wall']:.1f} s / {total_bound:.1f} s = {ratio_all:.2f}",
            "<= 1.10",
            verdict(ratio_all <= 1.10),
        ),
        (
            "answered 429 (or vendor 403 limit)",
            f"{share:.2%} ({throttled:,} of {requests:,})",
            "< 1%",
            verdict(share < 0.01),
        ),
        (
            "ETA: everyone's access cut, printed / measured",
            f"{eta.access_cut:.1f} s / {cut:.1f} s ({eta_cut_err:.0%} off)",
            "within 15%",
            verdict(eta_cut_err <= 0.15),
        ),
        (
            "ETA: every action done, printed / measured",
            f"{eta.cleanup_end:.1f} s / {m['wall']:.1f} s ({eta_end_err:.0%} off)",
            "within 15%",
            verdict(eta_end_err <= 0.15),
        ),
        (
            "peak memory (RSS): engine / sandbox process",
            f"{m['engine_rss'] / 2**20:.0f} MB / {m['all'].get('peak_rss', 0) / 2**20:.0f} MB",
            "",
            "",
        ),
        ("CPU: engine / sandbox process", f"{m['engine_cpu']:.0f} s / {m['all']['cpu']:.0f} s", "", ""),
        (
            "planning (" + ("inventory sync, then plans" if from_inventory else "discovery, 8 threads") + ")",
            f"{m['plan_wall']:.1f} s",
            "not in the ETA",
            "",
        ),
    ]
    figures.update(
        wall=m["wall"],
        all_bound=total_bound,
        all_bound_at=total_where,
        ratio_all=ratio_all,
        access_cut=cut,
        eta_access_cut=eta.access_cut,
        eta_cleanup_end=eta.cleanup_end,
        throttled_share=share,
        engine_rss=m["engine_rss"],
        sandbox_rss=m["all"].get("peak_rss"),
        complete=complete,
        incomplete=m["incomplete"][:5],
    )
    with _wide():
        count = len(m["cut"])
        report(f"Mass termination: {m['people']:,} people x {count} systems, critical-first, windows x{scale:g}", rows)
        console.print(f"All-actions bound set by {total_where}.")
        _print_buckets(all_stats)
        if m["incomplete"]:
            console.print(f"{len(m['incomplete'])} incomplete, first: " + "; ".join(m["incomplete"][:3]))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_mass", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=PEOPLE, help=f"people to terminate (default {PEOPLE:,})")
    parser.add_argument("--scale", type=float, default=SCALE, help=f"rate-limit window scale (default {SCALE})")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--latency", type=float, default=0.0, help="sandbox latency per request, ms")
    parser.add_argument("--floor", type=float, default=FLOOR, help="bounds under this many seconds are not judged")
    parser.add_argument(
        "--from-inventory",
        action="store_true",
        help="plan as `revoke --from-file --from-inventory` does (list every system once, pages as large as each "
        "vendor allows) instead of discovery per person; at real windows discovery of 10,000 people takes hours "
        "(Slack's lookupByEmail, Tier 3)",
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated sandbox systems, or 'all' (default {','.join(SYSTEMS)})",
    )
    args = parser.parse_args(argv)
    systems = None if args.systems == "all" else tuple(s.strip() for s in args.systems.split(",") if s.strip())
    if args.people < 1 or not 0 < args.scale <= 1 or args.floor < 0:
        parser.error("--people must be >= 1, --scale in (0, 1], --floor >= 0")
    run(args.people, args.scale, args.seed, args.latency, args.floor, args.from_inventory, systems)
    return 0


if __name__ == "__main__":
    sys.exit(main())
