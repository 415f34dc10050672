"""Bulk: 2,000 people x 5 sandbox systems under the vendors' default rate limits.

The sandbox's rate-limit windows are shrunk by ``--scale`` (0.01 makes "20 per
minute" into "20 per 0.6 s") and the connectors' configured ``rate`` is divided by the
same factor, so the run keeps the vendors' proportions but finishes in minutes.

The sandbox runs in its own process, as the vendors would, so its CPU does not count
against the engine's. It meters every request against the limit bucket(s) it spends
(Slack's per-method tiers, Entra's resource units and write limit, GitHub's primary
window and secondary points, ...). The rate-limit bound is, over every bucket, the
time the served requests need at that bucket's rate after its burst is spent; the
largest is the most constrained system (and method). Wall time over that bound is the
ratio (goal <= 1.10); the share of requests answered with a rate-limit error (429, or
the vendor's 403 equivalent) has a goal of under 1%. The baseline is the same work done
one person at a time with ``engine.revoke``, timed on a subset and extrapolated.

``python -m benchmarks.bench_bulk [--people 2000] [--scale 0.01] [--baseline 20]``
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._common import console, report, stopwatch, verdict

PEOPLE, SCALE, BASELINE, SEED = 2000, 0.01, 20, 5
FIXED_WINDOWS = {"github": ("primary", "graphql", "scim")}  # GitHub's primary limits reset hourly, not a bucket


# -- the sandbox, in a process of its own -------------------------------------------------


class _Meter:
    """Counts, per simulator, the limit tokens that served requests spent and the throttled answers."""

    def __init__(self, sim: Any, timeline: bool = False):
        self.sim = sim
        self.used: Counter[tuple[str, str]] = Counter()
        #: with ``timeline``: (wall time, bucket, key, tokens) of every served request, for ``stats(until)``
        self.timeline: list[tuple[float, str, str, float]] | None = [] if timeline else None
        self.requests = 0
        self.throttled = 0
        self.statuses: Counter[int] = Counter()
        self._takes: list[tuple[str, str, float]] | None = None
        self.busy = 0.0  # seconds this simulator's event loop spent answering (union of overlapping requests)
        self._active, self._since = 0, 0.0
        take, rate_limit, dispatch = sim.limiter.take, sim.rate_limit, sim.dispatch

        async def timed_dispatch(req: Any, fault: str | None = None) -> Any:
            if self._active == 0:
                self._since = time.perf_counter()
            self._active += 1
            try:
                return await dispatch(req, fault)
            finally:
                self._active -= 1
                if self._active == 0:
                    self.busy += time.perf_counter() - self._since

        def metered_take(name: str, key: str = "", cost: float = 1.0, now: float | None = None) -> float:
            wait = take(name, key, cost, now)
            if not wait and self._takes is not None:
                self._takes.append((name, key, cost))
            return wait

        def metered_rate_limit(req: Any, limit: str | None) -> float:
            self._takes = []
            try:
                wait = rate_limit(req, limit)
            finally:
                takes, self._takes = self._takes, None
            self.requests += 1
            if wait:
                self.throttled += 1
                return wait
            if sim.system == "github" and req.path != "/rate_limit":
                resource = sim._resource(req)
                takes.append(("primary" if resource == "core" else resource, "", 1))
            stamp = time.time()
            for name, key, cost in takes:
                self.used[(name, key)] += cost
                if self.timeline is not None:
                    self.timeline.append((stamp, name, key, cost))
            return wait

        sim.limiter.take = metered_take
        sim.rate_limit = metered_rate_limit
        sim.dispatch = timed_dispatch

    def reset(self) -> None:
        self.used.clear()
        if self.timeline is not None:
            self.timeline.clear()
        self.requests = self.throttled = 0
        self.busy = 0.0
        self.sim.log.clear()
        self.sim.limiter.reset()
        if hasattr(self.sim, "_window"):
            self.sim._window.clear()

    def stats(self, until: float | None = None) -> dict[str, Any]:
        """Requests, throttled answers, and per bucket: tokens spent and the seconds they need at the limit.

        ``until`` (a wall time; needs ``timeline``): count only the tokens of requests served before it.
        """
        sim, scale = self.sim, self.sim.knobs.window_scale
        used_by = self.used
        if until is not None and self.timeline is not None:
            used_by = Counter()
            for stamp, name, key, cost in self.timeline:
                if stamp <= until:
                    used_by[(name, key)] += cost
        buckets = []
        for (name, key), used in used_by.items():
            limit = sim.limits.get(name)
            if limit is None:
                continue
            per = limit.per * scale
            if name in FIXED_WINDOWS.get(sim.system, ()):
                need = math.ceil(used / limit.count - 1) * per if used > limit.count else 0.0  # whole windows to wait
            else:
                need = max(0.0, used - limit.capacity) / (limit.count / per)
            buckets.append(
                {"bucket": name, "key": key, "used": used, "limit": f"{limit.count:g}/{limit.per:g}s", "seconds": need}
            )
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "buckets": buckets,
            "busy": self.busy,
            "log": Counter(e.status for e in sim.log.entries()),
        }


def _serve_sandbox(conn: Any, people: int, seed: int, knobs: dict[str, Any], timeline: bool = False) -> None:
    import resource

    from offboard.sandbox import Sandbox

    with Sandbox(people=people, seed=seed, knobs=knobs) as sandbox:
        meters = {system: _Meter(sandbox.sim(system), timeline) for system in sandbox.systems}
        conn.send({"config": sandbox.config(), "people": list(sandbox.company.people)})
        cpu = time.process_time()
        while True:
            command = conn.recv()
            if command == "reset":
                for meter in meters.values():
                    meter.reset()
                cpu = time.process_time()
                conn.send(True)
            elif command == "stats":
                stats = {system: meter.stats() for system, meter in meters.items()}
                conn.send({"systems": stats, "cpu": time.process_time() - cpu})
            elif isinstance(command, tuple) and command[0] == "knobs":  # {system: {knob: value}}
                for system, changes in command[1].items():
                    sandbox.sim(system).knobs.update(**changes)
                    sandbox.sim(system).faults.storm_left = 0  # a storm under way ends with the faults
                conn.send(True)
            elif isinstance(command, tuple) and command[0] == "stats_until":  # {system: wall time}
                stats = {system: meter.stats(command[1].get(system)) for system, meter in meters.items()}
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                conn.send({"systems": stats, "cpu": time.process_time() - cpu, "peak_rss": rss})
            else:
                break


class RemoteSandbox:
    """A :class:`offboard.sandbox.Sandbox` served from a child process, metered."""

    def __init__(self, people: int, seed: int = SEED, timeline: bool = False, **knobs: Any):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_sandbox, args=(child, people, seed, knobs, timeline), daemon=True)
        self._proc.start()
        if not self._conn.poll(120):
            self._proc.kill()
            raise RuntimeError("the sandbox process did not start within 120 s")
        hello = self._conn.recv()
        self.config: dict[str, Any] = hello["config"]
        self.people, self.skipped = distinct_people(hello["people"])

    def reset(self) -> None:
        """Clear the request logs and meters, refill every rate-limit bucket."""
        self._conn.send("reset")
        self._conn.recv()

    def knobs(self, per_system: dict[str, dict[str, Any]]) -> None:
        """Change knobs of simulators (``{"slack": {"error_rate": 0.1}}``); a 429 storm under way there ends."""
        self._conn.send(("knobs", per_system))
        self._conn.recv()

    def stats(self) -> dict[str, Any]:
        """``{"systems": {system: meter stats}, "cpu": seconds of sandbox CPU since the last reset}``."""
        self._conn.send("stats")
        return self._conn.recv()

    def stats_until(self, until: dict[str, float]) -> dict[str, Any]:
        """As ``stats``, counting per system only requests served before its wall time in ``until``
        (the sandbox must keep a ``timeline``); also the sandbox process's peak RSS in bytes."""
        self._conn.send(("stats_until", until))
        return self._conn.recv()

    def close(self) -> None:
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._proc.join(20)
        if self._proc.is_alive():
            self._proc.kill()

    def __enter__(self) -> RemoteSandbox:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def distinct_people(people: list[Any]) -> tuple[list[Any], list[Any]]:
    """People none of whose emails or aliases another person also has (the seeded company can repeat an alias)."""
    counts = Counter(e.lower() for person in people for e in set(person.emails))
    kept, skipped = [], []
    for person in people:
        (kept if all(counts[e.lower()] == 1 for e in person.emails) else skipped).append(person)
    return kept, skipped


def bound(stats: dict[str, Any]) -> tuple[float, str]:
    """The rate-limit bound in seconds and the bucket that sets it."""
    best, where = 0.0, "no bucket binds"
    for system, s in stats.items():
        for b in s["buckets"]:
            if b["seconds"] > best:
                key = f" {b['key']}" if b["key"] and len(b["key"]) < 40 else ""
                best, where = b["seconds"], f"{system} {b['bucket']}{key}: {b['used']:g} at {b['limit']}"
    return best, where


def busiest(stats: dict[str, Any]) -> tuple[float, str]:
    """The longest time one simulator spent answering: no client can finish sooner."""
    system = max(stats, key=lambda name: stats[name]["busy"])
    return stats[system]["busy"], system


def throttled_share(stats: dict[str, Any]) -> tuple[int, int]:
    return sum(s["throttled"] for s in stats.values()), sum(s["requests"] for s in stats.values())


# -- the engine ---------------------------------------------------------------------------


def engine_config(raw: dict[str, Any], scale: float, **extra: Any) -> Any:
    """The sandbox's config with every connector's rate divided by ``scale``."""
    from offboard import plugins
    from offboard.config._config import Config, ConnectorConfig

    classes = plugins.connector_classes()
    connectors = {}
    for name, item in raw["connectors"].items():
        cls = classes[item["type"]]
        scaled = dict(item)
        if cls.default_rate:
            scaled["rate"] = cls.default_rate / scale
        lanes = (
            getattr(cls, "rate_limits", None) or {}
        )  # per-method lanes (e.g. Slack's tiers), when the engine has them
        if lanes and "rates" in ConnectorConfig.model_fields:
            scaled["rates"] = {lane: rate / scale for lane, (rate, _burst) in lanes.items()}
        connectors[name] = scaled
    return Config.model_validate({**raw, "connectors": connectors, **extra})


def plan_all(engine: Any, people: list[Any], threads: int = 8) -> tuple[list[Any], list[str]]:
    """Plan everyone (discovery in parallel) and open one case per person."""
    with ThreadPoolExecutor(threads, thread_name_prefix="bench-plan") as pool:
        plans = list(pool.map(engine.plan, people))
    return plans, [engine.open_case(plan, trigger="bench", reason="bulk benchmark") for plan in plans]


def _bulk(people: int, scale: float, seed: int, latency_ms: float) -> dict[str, Any]:
    from offboard.engine._engine import Engine

    out: dict[str, Any] = {}
    home = Path(tempfile.mkdtemp(prefix="offboard-bench-bulk-"))
    with RemoteSandbox(people, seed, window_scale=scale, latency_ms=latency_ms) as sandbox:
        engine = Engine.open(engine_config(sandbox.config, scale), home)
        try:
            sandbox.reset()
            with stopwatch() as planned:
                plans, case_ids = plan_all(engine, sandbox.people)
            out["plan"] = {**sandbox.stats(), "wall": planned[0]}
            sandbox.reset()
            time.sleep(1.0)  # let the engine's own buckets refill too
            last = [0.0]

            def progress(event: dict[str, Any]) -> None:
                last[0] = time.perf_counter()

            cpu = time.process_time()
            with stopwatch() as ran:
                results = engine.run_cases(case_ids, progress)
            out["run"] = {
                **sandbox.stats(),
                "wall": ran[0],
                "engine_cpu": time.process_time() - cpu,
                "close_tail": time.perf_counter() - last[0] if last[0] else 0.0,
            }
        finally:
            engine.close()
            shutil.rmtree(home, ignore_errors=True)
    out["people"] = len(plans)
    out["skipped"] = len(sandbox.skipped)
    out["actions"] = sum(len(p.actions) for p in plans)
    out["status"] = Counter(r.status.value for r in results)
    out["incomplete"] = [r.detail.splitlines()[0] for r in results if not r.ok]
    return out


def _baseline(people: int, sample: int, scale: float, seed: int, latency_ms: float) -> dict[str, Any]:
    from offboard.engine._engine import Engine

    home = Path(tempfile.mkdtemp(prefix="offboard-bench-baseline-"))
    with RemoteSandbox(people, seed, window_scale=scale, latency_ms=latency_ms) as sandbox:
        engine = Engine.open(engine_config(sandbox.config, scale), home)
        try:
            chosen = sandbox.people[:sample]
            sandbox.reset()
            with stopwatch() as wall:
                results = [engine.revoke(person, trigger="bench") for person in chosen]
            stats = sandbox.stats()
        finally:
            engine.close()
            shutil.rmtree(home, ignore_errors=True)
    return {
        **stats,
        "sample": len(chosen),
        "wall": wall[0],
        "per_person": wall[0] / len(chosen),
        "status": Counter(r.status.value for r in results),
    }


def run(
    people: int = PEOPLE, scale: float = SCALE, baseline: int = BASELINE, seed: int = SEED, latency_ms: float = 0.0
) -> dict[str, Any]:
    """Run the bulk scenario and its baseline; print the table; return the figures."""
    from offboard.config._logging import configure_logging

    configure_logging(-1)  # errors only: retries on 429 are counted by the sandbox, not logged line by line
    console.print(
        f"[bold]Bulk[/]: {people} people x 5 sandbox systems under the vendors' default limits, windows and connector "
        f"rates scaled by {scale:g} (1 s here = {1 / scale:g} s at the vendors); sandbox latency {latency_ms:g} ms; "
        f"machine: {os.cpu_count()} cores (the sandbox runs in its own process)"
    )
    bulk = _bulk(people, scale, seed, latency_ms)
    base = _baseline(people, min(baseline, bulk["people"]), scale, seed, latency_ms) if baseline else None
    run_, plan = bulk["run"], bulk["plan"]
    run_bound, run_where = bound(run_["systems"])
    plan_bound, plan_where = bound(plan["systems"])
    throttled, requests = throttled_share(run_["systems"])
    p_throttled, p_requests = throttled_share(plan["systems"])
    ratio = run_["wall"] / run_bound if run_bound else math.inf
    busy, busy_system = busiest(run_["systems"])
    floor = max(run_bound, busy)
    share = throttled / requests if requests else 0.0
    total = plan["wall"] + run_["wall"]
    complete = bulk["status"].get("complete", 0)
    rows = [
        (
            "people, actions",
            f"{bulk['people']:,}, {bulk['actions']:,}",
            f"({bulk['skipped']} sharing an alias left out)",
            "",
        ),
        ("cases complete", f"{complete:,} of {bulk['people']:,}", "all", verdict(complete == bulk["people"])),
        ("run: requests (served + throttled)", f"{requests:,}", "", ""),
        ("run: rate-limit bound", f"{run_bound:.1f} s", "", ""),
        ("run: wall time (engine.run_cases)", f"{run_['wall']:.1f} s", "", ""),
        ("run: wall / bound", f"{ratio:.2f}", "<= 1.10", verdict(ratio <= 1.10)),
        ("run: answered 429 (or vendor's 403 limit)", f"{share:.2%} ({throttled:,})", "< 1%", verdict(share < 0.01)),
        ("run: busiest simulator's time answering", f"{busy:.1f} s", busy_system, ""),
        ("run: wall / max(bound, that)", f"{run_['wall'] / floor:.2f}" if floor else "-", "", ""),
        ("run: closing cases after the last action", f"{run_['close_tail']:.1f} s", "", ""),
        ("run: CPU, engine process / sandbox process", f"{run_['engine_cpu']:.0f} s / {run_['cpu']:.0f} s", "", ""),
        ("plan: wall (engine.plan, 8 threads) / bound", f"{plan['wall']:.1f} s / {plan_bound:.1f} s", "", ""),
        ("plan: requests, answered 429", f"{p_requests:,}, {p_throttled / max(p_requests, 1):.2%}", "", ""),
        ("plan + run: wall", f"{total:.1f} s", "", ""),
    ]
    figures: dict[str, Any] = {
        "people": bulk["people"],
        "skipped": bulk["skipped"],
        "actions": bulk["actions"],
        "scale": scale,
        "complete": complete,
        "run_wall": run_["wall"],
        "run_bound": run_bound,
        "bound_at": run_where,
        "ratio": ratio,
        "busiest": busy,
        "busiest_system": busy_system,
        "throttled_share": share,
        "throttled": throttled,
        "requests": requests,
        "close_tail": run_["close_tail"],
        "engine_cpu": run_["engine_cpu"],
        "sandbox_cpu": run_["cpu"],
        "plan_wall": plan["wall"],
        "plan_bound": plan_bound,
        "plan_bound_at": plan_where,
        "plan_throttled_share": p_throttled / max(p_requests, 1),
        "incomplete": bulk["incomplete"][:5],
    }
    if base:
        extrapolated = base["per_person"] * bulk["people"]
        b_throttled, b_requests = throttled_share(base["systems"])
        rows += [
            (
                f"baseline: one at a time (engine.revoke), {base['sample']} people",
                f"{base['per_person'] * 1000:.0f} ms/person",
                f"{b_throttled / max(b_requests, 1):.1%} answered 429",
                "",
            ),
            (f"baseline: extrapolated to {bulk['people']:,} people", f"{extrapolated:.0f} s", "", ""),
            ("speed-up: bulk (plan + run) over baseline", f"{extrapolated / total:.1f}x", "", ""),
        ]
        figures.update(
            baseline_per_person=base["per_person"],
            baseline_sample=base["sample"],
            baseline_total=extrapolated,
            speedup=extrapolated / total,
        )
    with _wide():
        report(f"Bulk: {bulk['people']:,} people x 5 systems, vendor rate limits, windows x{scale:g}", rows)
        console.print(f"Bound set by {run_where}; for discovery by {plan_where}.")
        _print_buckets(run_["systems"])
        if bulk["incomplete"]:
            console.print(f"{len(bulk['incomplete'])} incomplete, first: " + "; ".join(bulk["incomplete"][:3]))
    return figures


@contextmanager
def _wide(width: int = 140) -> Iterator[None]:
    old = console.width
    console.width = max(old, width)
    try:
        yield
    finally:
        console.width = old


def _print_buckets(stats: dict[str, Any], top: int = 6) -> None:
    """The buckets that came closest to binding, and throttled answers per system."""
    rows = []
    for system, s in stats.items():
        merged: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for b in s["buckets"]:
            m = merged[f"{b['bucket']} ({b['limit']})"]
            m[0] += b["used"]
            m[1] = max(m[1], b["seconds"])
        for name, (used, seconds) in merged.items():
            rows.append((seconds, system, name, used))
    rows.sort(reverse=True)
    console.print(
        "Buckets nearest to binding (tokens spent -> seconds needed at the limit): "
        + "; ".join(f"{system} {name}: {used:g} -> {seconds:.1f} s" for seconds, system, name, used in rows[:top])
    )
    console.print(
        "Answered 429 per system: "
        + ", ".join(f"{system} {s['throttled']:,}/{s['requests']:,}" for system, s in stats.items())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_bulk", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=PEOPLE, help=f"people in the sandbox company (default {PEOPLE})")
    parser.add_argument("--scale", type=float, default=SCALE, help=f"rate-limit window scale (default {SCALE})")
    parser.add_argument(
        "--baseline", type=int, default=BASELINE, help=f"people to time one at a time (default {BASELINE}; 0 skips)"
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--latency", type=float, default=0.0, help="sandbox latency per request, ms")
    args = parser.parse_args(argv)
    if args.people < 1 or not 0 < args.scale <= 1 or args.baseline < 0:
        parser.error("--people must be >= 1, --scale in (0, 1], --baseline >= 0")
    run(args.people, args.scale, args.baseline, args.seed, args.latency)
    return 0


if __name__ == "__main__":
    sys.exit(main())
