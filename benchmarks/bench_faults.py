"""Faults: 200 people x the sandbox's systems under 15% 5xx, 5% timeouts and a 429 storm per system.

Two runs in one invocation, each against a fresh sandbox in its own process (as in
``bench_bulk``, whose rate-limit scaling it shares), each revoking the same people planned
with the faults off: first the run with the faults off, then with them on (``error_rate``
0.15, ``timeout_rate`` 0.05 with the sandbox hanging ``--timeout`` seconds before it drops
the connection, and per system a ``storm_rate`` of one over the requests the clean run sent
there: about one storm of 20 rate-limited answers per system). Goals: every case complete in
both runs, and the faulty run's wall time at most 1.5x the clean one's. It prints the retries
per action (p50, p99, max), from the attempts the store recorded: a connector's requests the
engine sent again inside a call (``Connector.request``) count as retries. A second table says,
per system, when everyone's access there was cut and when its last action ended (faults off and
on: the system that ends last is the critical path), the thread-seconds its threads slept
backing off and waiting on rate limits, and how many stalled requests lent their slot.

Then, with the faults stopped, it retries the owed work (``offboard cases retry``: the
engine's ``retry_owed``) until nothing is owed, and runs the residual check (``offboard
check``: ``engine._check.residual``) for every person: all must be clean.

The people leaving are those who manage no one: the handover steps of the default policy
give a leaver's mailbox and files to the manager, whom Google refuses as a delegate once
suspended (a mass termination that includes the managers hands over to someone else).

``python -m benchmarks.bench_faults [--people 200] [--scale 0.01] [--timeout 1.0]``
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ._common import console, report, stopwatch, verdict
from .bench_bulk import SEED, RemoteSandbox, engine_config, plan_all

PEOPLE, SCALE, TIMEOUT, RATIO_GOAL = 200, 0.01, 1.0, 1.5
STORM_LENGTH = 20


def _percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0


def _leavers(people: list[Any], count: int) -> list[Any]:
    """The first ``count`` people who are nobody's manager (the handover goes to the manager)."""
    managers = {p.manager for p in people if p.manager}
    return [p for p in people if p.id not in managers and p.email not in managers][:count]


def _settle(
    engine: Any, sandbox: RemoteSandbox, plans: list[Any], case_ids: list[str], systems: list[str], rounds: int = 5
) -> dict[str, Any]:
    """With the faults stopped: owed work retried until none is owed, people whose case could not search a
    system revoked again (``cases retry`` retries actions, not a discovery that failed), then everyone checked."""
    from offboard.engine._check import residual
    from offboard.engine._owed import owed

    sandbox.knobs({system: {"error_rate": 0.0, "timeout_rate": 0.0, "storm_rate": 0.0} for system in systems})
    retried = 0
    with stopwatch() as took:
        for _ in range(rounds):
            items = owed(engine)
            if not items:
                break
            retried += sum(len(item.actions) for item in items)
            engine.retry_owed(force=True)
        still_owed = len(owed(engine))
        unsearched = [
            plan.person
            for plan, case_id in zip(plans, case_ids, strict=True)
            if ": discovery failed: " in engine.result(case_id).detail
        ]
        if unsearched:
            _, again = plan_all(engine, unsearched)
            engine.run_cases(again)
        reports = [residual(engine, plan.person) for plan in plans]
    dirty = [r for r in reports if not r.clean]
    return {
        "owed_retried": retried,
        "revoked_again": len(unsearched),
        "still_owed": still_owed,
        "clean": len(reports) - len(dirty),
        "checked": len(reports),
        "dirty": [f"{r.person.id}: {[x.to_dict() for x in r.leftovers][:2]} {r.errors}" for r in dirty],
        "settle_wall": took[0],
    }


def _run(people: int, scale: float, faults: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """One bulk revoke of ``people`` leavers; ``faults``: knobs per system, set after planning."""
    from offboard.engine._engine import Engine

    home = Path(tempfile.mkdtemp(prefix="offboard-bench-faults-"))
    company = people + people // 7 + 8  # one in eight manages: enough who do not
    with RemoteSandbox(company, SEED, window_scale=scale) as sandbox:
        engine = Engine.open(engine_config(sandbox.config, scale), home)
        try:
            plans, case_ids = plan_all(engine, _leavers(sandbox.people, people))
            sandbox.reset()
            if faults:
                sandbox.knobs(faults)
            slept = _count_sleeps(engine)
            waited = dict(engine.rate_limit_waits())
            cpu = time.process_time()
            with stopwatch() as ran:
                results = engine.run_cases(case_ids)
            engine_cpu = time.process_time() - cpu
            timing = {system: t.to_dict() for system, t in engine.last_timing.items()}
            lent = dict(engine.stalled.lent)
            waited = {name: s - waited.get(name, 0.0) for name, s in engine.rate_limit_waits().items()}
            metered = sandbox.stats()
            stats = metered["systems"]
            retries = [max(0, (row["attempts"] or 1) - 1) for c in case_ids for row in engine.store.actions(c)]
            settled = _settle(engine, sandbox, plans, case_ids, list(faults)) if faults else {}
        finally:
            engine.close()
            shutil.rmtree(home, ignore_errors=True)
    return {
        **settled,
        "wall": ran[0],
        "cpu": (engine_cpu, metered["cpu"]),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
        "people": len(plans),
        "actions": len(retries),
        "status": Counter(r.status.value for r in results),
        "incomplete": [r.detail.splitlines()[0] for r in results if not r.ok],
        "retries": retries,
        "requests": {system: s["requests"] for system, s in stats.items()},
        "storms": {system: s["log"].get(429, 0) for system, s in stats.items()},
        "timing": timing,
        "slept": dict(slept),
        "waited": waited,
        "lent": lent,
    }


def _count_sleeps(engine: Any) -> Counter[str]:
    """Seconds the engine slept, per system (its threads are named after it): backoffs and bucket waits."""
    slept: Counter[str] = Counter()
    sleep = engine.sleep

    def counted(seconds: float) -> None:
        name = threading.current_thread().name
        if name.startswith("offboard-") and name != "offboard-close":
            slept[name.removeprefix("offboard-").rsplit("_", 1)[0]] += seconds
        sleep(seconds)

    engine.sleep = counted
    return slept


def _per_system(clean: dict[str, Any], faulty: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Per system: when its last action ended (faults off / on), and what the faulty run's threads slept on it."""

    def ended(run: dict[str, Any], system: str) -> str:
        t = run["timing"].get(system) or {}
        cut, end = t.get("access_cut_seconds"), t.get("cleanup_end_seconds")
        return f"cut {cut if cut is not None else '-'} s, end {end if end is not None else '-'} s"

    rows = []
    for system in sorted(faulty["requests"]):
        bucket = sum(w for name, w in faulty["waited"].items() if name == system or name.startswith(system + ":"))
        backoff = max(faulty["slept"].get(system, 0.0) - bucket, 0.0)
        rows.append(
            (
                system,
                f"off: {ended(clean, system)}; on: {ended(faulty, system)}",
                f"slept {backoff:.0f} s backing off, {bucket:.0f} s on rate limits (thread-seconds); "
                f"{faulty['lent'].get(system, 0)} stalled requests lent their slot",
                "",
            )
        )
    return rows


def run(people: int = PEOPLE, scale: float = SCALE, timeout: float = TIMEOUT) -> bool:
    clean = _run(people, scale, None)
    faults = {
        system: {
            "error_rate": 0.15,
            "timeout_rate": 0.05,
            "timeout_seconds": timeout,
            "storm_rate": 1.0 / max(requests, 1),  # about one storm over the run's requests to the system
            "storm_length": STORM_LENGTH,
        }
        for system, requests in clean["requests"].items()
    }
    faulty = _run(people, scale, faults)
    ratio = faulty["wall"] / clean["wall"]
    complete = all(not r["incomplete"] and r["status"].get("complete", 0) == r["people"] for r in (clean, faulty))
    retries = faulty["retries"]
    rows = [
        ("people x systems", f"{faulty['people']} x {len(faulty['requests'])}, {faulty['actions']} actions", "", ""),
        ("wall, faults off", f"{clean['wall']:.1f} s", "", ""),
        ("wall, faults on", f"{faulty['wall']:.1f} s", "", ""),
        (
            "CPU, engine / sandbox (off; on)",
            "; ".join(f"{run_['cpu'][0]:.0f} s / {run_['cpu'][1]:.0f} s" for run_ in (clean, faulty)),
            "",
            "",
        ),
        ("engine peak RSS (both runs)", f"{faulty['peak_rss'] / 2**20:.0f} MB", "", ""),
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
        (
            "requests (faults off / on)",
            f"{sum(clean['requests'].values())} / {sum(faulty['requests'].values())}",
            "",
            "",
        ),
        ("429 answers (faults on)", ", ".join(f"{s} {n}" for s, n in sorted(faulty["storms"].items())), "", ""),
        (
            "faults stopped: owed actions retried",
            f"{faulty['owed_retried']}, {faulty['still_owed']} still owed; "
            f"{faulty['revoked_again']} people revoked again (a system not searched) "
            f"({faulty['settle_wall']:.1f} s with the check)",
            "0 owed",
            verdict(faulty["still_owed"] == 0),
        ),
        (
            "offboard check clean",
            f"{faulty['clean']} of {faulty['checked']} people",
            "all",
            verdict(faulty["clean"] == faulty["checked"]),
        ),
    ]
    report("Faults: bulk revoke under failing vendors", rows)
    report(
        "Per system: seconds after the batch began (access cut, last action), faults on: sleeps",
        _per_system(clean, faulty),
    )
    for line in (clean["incomplete"] + faulty["incomplete"])[:5]:
        console.print(f"  incomplete: {line}")
    for line in faulty["dirty"][:5]:
        console.print(f"  not clean: {line}")
    settled = faulty["still_owed"] == 0 and faulty["clean"] == faulty["checked"]
    return ratio <= RATIO_GOAL and complete and settled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_faults", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=PEOPLE, help=f"people leaving (default {PEOPLE})")
    parser.add_argument("--scale", type=float, default=SCALE, help=f"rate-limit window scale (default {SCALE})")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="seconds a timed-out request hangs")
    args = parser.parse_args(argv)
    return 0 if run(args.people, args.scale, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
