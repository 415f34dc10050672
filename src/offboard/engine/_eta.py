"""How long a bulk run will take, before it starts: per system, the calls, the limit that binds, the ETA.

The engine paces each system with token buckets (``_ratelimit``): the system's own bucket
(``rate``/``burst`` from the configuration, else the connector's ``default_rate``) and,
for connectors that limit per method, one bucket per lane (``Connector.rate_limits``,
overridden by ``connectors.<name>.rates``). A batch run critical-first (``_schedule``)
spends each bucket first on the access-cutting actions, then on cleanup, so:

- the **calls** of an action are what the engine will spend on it: for a connector
  without lanes, one engine call each for the before-state read (when the connector
  reads one), the write and the read-back; for a connector with lanes, the requests it
  declares per lane in ``Connector.calls`` (the requests the vendor is sent);
- a bucket of rate ``r`` and burst ``b`` that must serve ``n`` tokens needs
  ``max(0, n - b) / r`` seconds; the largest over a system's buckets is the **binding
  limit**; ``concurrency`` threads doing ``n`` calls of ``latency`` seconds need
  ``n * latency / concurrency`` (the floor when no limit binds);
- **access cut**: that time for the critical calls alone; **cleanup end**: for all calls, and
  no earlier than the access cut plus that time for the cleanup calls alone (a system's cleanup
  starts once everyone's access is cut there); on a system whose cleanup takes none of the
  critical actions' lanes (``_schedule.early_cleanup``) the cleanup runs beside the critical
  phase, and only the closing checks' reads wait for the access cut. A system's cleanup end is
  its actions' end; the batch's (``Eta.cleanup_end``) takes the closing checks' reads too
  (``checks_end``), which come when each person's slowest system is through.

Actions a vendor documents as implied by another (``Plan.covered``) make no calls. The
residual check at each case's close (``cases.check_on_close``) reads each account back
once per kind the policy removes (``Connector.residual_kinds``), and sends what the connector's
own ``residual()`` sends (``Connector.residual_calls``): cleanup-phase calls.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import ActionKind
from ._schedule import critical_kinds, runs_cleanup_early

if TYPE_CHECKING:
    from ..connector import Connector
    from ._engine import Engine

__all__ = ["Eta", "SystemEta", "estimate", "calls_of", "reads_of", "format_seconds"]

SYSTEM = ""  # the bucket key of a system's own bucket


@dataclass
class SystemEta:
    """One system's share of a bulk run."""

    system: str
    actions: int = 0
    critical_actions: int = 0
    covered: int = 0
    calls: int = 0  # engine calls, or requests for a connector with lanes
    critical_calls: int = 0
    binding: str = "none"  # the bucket that sets the time: "system" or a lane's name, or "none"
    limit: str = "none"  # that bucket's limit, e.g. "20/min, burst 5"
    access_cut: float = 0.0  # seconds until everyone's access is cut here
    cleanup_end: float = 0.0  # seconds until this system's last action
    checks_end: float = 0.0  # the same with the closing checks' reads of this system
    per_bucket: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Whole seconds, rounded up (audit entries hold no floats)."""
        return {
            "system": self.system,
            "actions": self.actions,
            "critical_actions": self.critical_actions,
            "covered": self.covered,
            "calls": self.calls,
            "critical_calls": self.critical_calls,
            "binding_limit": f"{self.binding}: {self.limit}" if self.binding != "none" else "none",
            "access_cut_seconds": math.ceil(self.access_cut),
            "cleanup_end_seconds": math.ceil(self.cleanup_end),
            "checks_end_seconds": math.ceil(self.checks_end),
        }


@dataclass
class Eta:
    """Every system's estimate; the run ends when the slowest system's cleanup does."""

    systems: list[SystemEta] = field(default_factory=list)

    @property
    def access_cut(self) -> float:
        return max((s.access_cut for s in self.systems), default=0.0)

    @property
    def cleanup_end(self) -> float:
        """Until every action and every case's closing check is done."""
        return max((max(s.cleanup_end, s.checks_end) for s in self.systems), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_cut_seconds": math.ceil(self.access_cut),
            "cleanup_end_seconds": math.ceil(self.cleanup_end),
            "systems": [s.to_dict() for s in self.systems],
        }

    def lines(self) -> list[str]:
        """One plain line per system and a total, for the CLI and approval requests."""
        out = []
        for s in self.systems:
            covered = f", {s.covered} covered by the vendor" if s.covered else ""
            out.append(
                f"{s.system}: {s.calls:,} calls ({s.critical_calls:,} to cut access{covered}); "
                f"binding limit {s.binding} ({s.limit}); access cut for everyone in {format_seconds(s.access_cut)}, "
                f"cleanup done in {format_seconds(s.cleanup_end)}"
            )
        out.append(
            f"everyone's access cut in {format_seconds(self.access_cut)}; "
            f"all actions done in {format_seconds(self.cleanup_end)}"
        )
        return out


def format_seconds(seconds: float) -> str:
    """``42 s``, ``12 min 5 s``, ``3 h 20 min``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def calls_of(cls: type[Connector], kind: ActionKind) -> dict[str, float]:
    """The tokens one action of ``kind`` takes, per bucket (``SYSTEM`` for the system's own bucket)."""
    if cls.rate_limits:  # per request: each request takes the system's bucket and its lane's
        declared = dict(cls.calls.get(kind, {}))
        if not declared:
            declared = {next(iter(cls.rate_limits)): 2.0}  # undeclared: a write and a read-back
        return {**declared, SYSTEM: sum(declared.values())}
    reads_before = getattr(cls, f"before_{kind.value}", None) is not None
    return {SYSTEM: 2.0 + (1.0 if reads_before else 0.0)}


def reads_of(cls: type[Connector], kind: ActionKind) -> dict[str, float]:
    """The tokens one read-back (``verify``) of ``kind`` takes, per bucket."""
    if cls.rate_limits:
        declared = dict(cls.reads.get(kind, {})) or {next(iter(cls.rate_limits)): 1.0}
        return {**declared, SYSTEM: sum(declared.values())}
    return {SYSTEM: 1.0}


def _residual(engine: Engine, plan: Any, every: dict[str, Counter[str]], memo: dict[Any, Counter[str]]) -> None:
    """The residual check at each case's close (``cases.check_on_close``): one read-back per account and kind
    the policy removes that the connector reads without a receipt; it comes after the case's last action.
    ``memo``: the tokens of one account's check per (policy name, system), shared across the plans of a run."""
    from ._connectors import connector_class

    systems = [a.account.system for a in {a.account.ref: a for a in plan.actions}.values()]
    for system in systems:
        if system not in every:
            continue
        key = (plan.policy.name, system)  # a policy with manual tasks added keeps its name and its actions
        tokens = memo.get(key)
        if tokens is None:
            cls = connector_class(engine, system)
            kinds, _ = plan.policy.actions_for(system, engine.config.connectors[system].type)
            capable = cls.capabilities()
            tokens = memo[key] = Counter()
            for kind in kinds:
                if kind in capable and kind in cls.residual_kinds:
                    tokens.update(reads_of(cls, kind))
            if cls.residual_calls and cls.rate_limits:  # what its own residual() lists, per account
                tokens.update({**cls.residual_calls, SYSTEM: sum(cls.residual_calls.values())})
        every[system].update(tokens)


def _limit(rate: float, burst: int) -> str:
    if rate >= 1:
        return f"{rate:g}/s, burst {burst}"
    if rate * 60 >= 1:
        return f"{rate * 60:g}/min, burst {burst}"
    return f"{rate * 3600:g}/h, burst {burst}"


def estimate(engine: Engine, plans: list[Any], latency: float = 0.05) -> Eta:
    """The ETA of running ``plans`` together, critical-first; ``latency``: seconds per call, a guess."""
    from ._connectors import concurrency_cap, connector_class

    by_system: dict[str, SystemEta] = {}
    tokens: dict[str, tuple[Counter[str], Counter[str]]] = {}  # system -> (critical, all) tokens per bucket
    closing: dict[str, Counter[str]] = {}  # system -> the closing checks' tokens per bucket
    critical: dict[str, frozenset[ActionKind]] = {}
    # tokens per (system, kind) and per residual check, worked out once: a bulk run holds tens of thousands
    per_kind: dict[tuple[str, ActionKind], dict[str, float]] = {}
    residual: dict[Any, Counter[str]] = {}
    check = engine.config.cases.check_on_close
    for plan in plans:
        for action in plan.actions:
            system = action.account.system
            if system not in critical:
                critical[system] = critical_kinds(connector_class(engine, system).ordering)
                by_system[system] = SystemEta(system)
                tokens[system] = (Counter(), Counter())
                closing[system] = Counter()
            entry, (crit, every) = by_system[system], tokens[system]
            per = per_kind.get((system, action.kind))
            if per is None:
                per = per_kind[(system, action.kind)] = calls_of(connector_class(engine, system), action.kind)
            entry.actions += 1
            every.update(per)
            if action.kind in critical[system]:
                entry.critical_actions += 1
                crit.update(per)
        if check:
            _residual(engine, plan, closing, residual)
        for action, _kind, _why in getattr(plan, "covered", ()):
            system = action.account.system
            by_system.setdefault(system, SystemEta(system)).covered += 1
            tokens.setdefault(system, (Counter(), Counter()))
    for system, entry in by_system.items():
        crit, actions = tokens[system]
        every = actions + closing.get(system, Counter())  # and the closing checks' reads
        entry.calls, entry.critical_calls = int(every[SYSTEM]), int(crit[SYSTEM])
        entry.per_bucket = {k or "system": int(v) for k, v in every.items()}
        buckets = _buckets(engine, system)
        concurrency = concurrency_cap(engine, system)
        entry.access_cut, _, _ = _time(buckets, crit, concurrency, latency)
        entry.checks_end, entry.binding, entry.limit = _time(buckets, every, concurrency, latency)
        entry.cleanup_end, _, _ = _time(buckets, actions, concurrency, latency)
        # A system's cleanup starts when everyone's access is cut there (``_schedule``), unless it takes none of
        # the critical lanes (Okta: the System Log's reads bind the critical phase, memberships go beside them);
        # the closing checks' reads wait for the access cut either way (``_schedule.Gate``). The system's line
        # shows its actions' end: a case closes, and reads every system the person holds, only once the
        # person's slowest system is through, so those reads count in the batch's end (``Eta.cleanup_end``).
        kinds = {kind for planned, kind in per_kind if planned == system}
        early = runs_cleanup_early(engine, system, kinds, critical.get(system, frozenset()))
        held_actions = Counter() if early else actions - crit
        held = every - actions if early else every - crit
        after, _, _ = _time(buckets, held_actions, concurrency, latency)
        entry.cleanup_end = max(entry.cleanup_end, entry.access_cut + after)
        after, _, _ = _time(buckets, held, concurrency, latency)
        entry.checks_end = max(entry.checks_end, entry.access_cut + after)
        if entry.critical_calls and entry.binding == "none":
            _, entry.binding, entry.limit = _time(buckets, crit, concurrency, latency)
    return Eta(sorted(by_system.values(), key=lambda s: s.system))


def _buckets(engine: Engine, system: str) -> dict[str, tuple[float | None, int]]:
    """Each bucket the engine paces ``system`` with: (rate, burst), as ``_connectors._build`` makes them."""
    from ._connectors import connector_class

    cls = connector_class(engine, system)
    cfg = engine.config.connectors[system]
    rate = cfg.rate if cfg.rate is not None else cls.default_rate
    out: dict[str, tuple[float | None, int]] = {SYSTEM: (rate, _burst(rate, cfg.burst))}
    for lane, (lane_rate, lane_burst) in cls.rate_limits.items():
        lane_rate = cfg.rates.get(lane, cfg.rates.get("*", lane_rate))
        out[lane] = (lane_rate, _burst(lane_rate, lane_burst))
    return out


def _burst(rate: float | None, burst: int | None) -> int:
    return max(1, burst or (int(rate) if rate and rate >= 1 else 1))  # as TokenBucket does


def _time(
    buckets: dict[str, tuple[float | None, int]], tokens: Counter[str], concurrency: int, latency: float
) -> tuple[float, str, str]:
    """Seconds to spend ``tokens``, the bucket that binds, and its limit."""
    best, binding, limit = tokens[SYSTEM] * latency / max(1, concurrency), "none", "none"
    for name, (rate, burst) in buckets.items():
        n = tokens.get(name, 0)
        if not rate or n <= 0:
            continue
        need = max(0.0, n - burst) / rate
        if need > 0 and need >= best:
            best, binding, limit = need, name or "system", _limit(rate, burst)
    return best, binding, limit
