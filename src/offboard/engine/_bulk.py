"""Revoking a list of people at once (``offboard revoke --from-file``), with a sweep's guards.

The file names people by email, employee id or people-source id: a CSV with a header
holding one of ``person``, ``email``, ``employee_id``, ``id`` (or a single column without a
header), or a JSON list of such strings or of objects with one of those keys. Every
reference must resolve before anything is planned: one unknown name stops the run, naming
the file and the line (or index) of each. Everyone is planned as one bulk run (implied
actions covered, ``_schedule.bulk_plan``), guarded like a sweep (``limits.max_cases``,
``limits.max_percent`` of a system's inventoried active accounts; protected accounts are
never planned), and estimated (``_eta``). A guard halts the run before any action and
records why with the ETA; ``approve`` with an approver's name records the approval and
proceeds. Cases open with trigger ``bulk`` and run in one critical-first batch.

``from_inventory``: plan from the account inventory (``inventory._inventory``) instead of
discovering each person on every system: one paged listing per system (``sync``, or the
stored inventory as last synced) replaces about ten discovery requests per person. Where
the inventory cannot answer for a person (a system that cannot list, whose sync failed, or
that holds active accounts with nothing to correlate by and none tied to this person), that
person is discovered on that system alone. It needs a people source (the inventory ties
accounts to people from it).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ..errors import ApprovalRequired, OffboardError, UnknownPerson
from ..inventory import _inventory
from ..inventory._sweep import destructive_reasons, guard, successors_staying
from ..models import Person
from ..people import identity_key

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["BulkResult", "read_people", "revoke_many"]

log = structlog.get_logger("offboard.bulk")
KEYS = ("person", "email", "employee_id", "id")


@dataclass
class BulkResult:
    """What a bulk revoke planned, whether it halted, the ETA, and the cases it ran."""

    people: list[str] = field(default_factory=list)
    plans: list[Any] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    halted: bool = False
    dry_run: bool = False
    approved_by: str | None = None
    destructive: list[str] = field(default_factory=list)  # steps offboard cannot undo: a halt reason unless allowed
    eta: Any = None  # offboard.engine._eta.Eta
    timing: dict[str, Any] = field(default_factory=dict)  # per system: when access was cut, when cleanup ended
    cases: list[Any] = field(default_factory=list)
    nothing: list[tuple[str, str]] = field(default_factory=list)  # (person, why no case)
    cancelled: bool = False  # turned down at the prompt: nothing was opened
    sync: Any = None  # from_inventory: the inventory sync made first (inventory._inventory.SyncReport)
    discovered: dict[str, int] = field(default_factory=dict)  # from_inventory: system -> people discovered there

    @property
    def ok(self) -> bool:
        return not self.halted and all(c.ok for c in self.cases) and not any(p.errors for p in self.plans)

    @property
    def message(self) -> str:
        if self.halted:
            only_destructive = len(self.reasons) == len(self.destructive)
            return (
                "bulk revoke halted before any action: "
                + "; ".join(self.reasons)
                + ". If this is right, re-run with "
                + (
                    "--allow-destructive (or --approve --approver NAME)"
                    if only_destructive
                    else "--approve --approver NAME"
                )
            )
        if self.cancelled:
            return "cancelled at the prompt: nothing was changed"
        if self.dry_run:
            verb = "would halt: " + "; ".join(self.reasons) if self.reasons else f"would open {len(self.plans)} case(s)"
            return f"dry run: {len(self.people)} person(s) listed; {verb}"
        incomplete = sum(not c.ok for c in self.cases)
        return f"{len(self.cases)} case(s) opened and run, {incomplete} incomplete" if self.cases else "nothing to do"

    def to_dict(self) -> dict[str, Any]:
        return {
            "halted": self.halted,
            "dry_run": self.dry_run,
            "reasons": self.reasons,
            "destructive": self.destructive,
            "approved_by": self.approved_by,
            "people": self.people,
            "message": self.message,
            "eta": self.eta.to_dict() if self.eta is not None else None,
            "measured": {system: t.to_dict() for system, t in self.timing.items()},
            "plans": [p.to_dict() for p in self.plans],
            "cases": [c.to_dict() for c in self.cases],
            "nothing_to_do": [{"person": p, "why": w} for p, w in self.nothing],
            **({"sync": self.sync.to_dict()} if self.sync is not None else {}),
            **({"discovered": dict(self.discovered)} if self.discovered else {}),
        }


def read_people(path: Path) -> list[tuple[str, str]]:
    """(reference, where) for each person ``path`` lists, in order, each once; OffboardError naming the problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise OffboardError(f"{path}: cannot read the people file: {exc}") from None
    if path.suffix.lower() == ".json":
        found = _from_json(path, text)
    elif path.suffix.lower() in (".csv", ".txt"):
        found = _from_csv(path, text)
    else:
        raise OffboardError(f"{path}: the people file must end in .csv or .json")
    seen: set[str] = set()
    out = []
    for ref, where in found:
        if ref.lower() not in seen:
            seen.add(ref.lower())
            out.append((ref, where))
    if not out:
        raise OffboardError(f"{path}: lists nobody")
    return out


def _from_json(path: Path, text: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OffboardError(f"{path}: line {exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise OffboardError(f"{path}: must hold a JSON list of people (strings, or objects with one of {KEYS})")
    out = []
    for i, item in enumerate(data):
        where = f"{path}: item {i}"
        if isinstance(item, dict):
            item = next((item[k] for k in KEYS if isinstance(item.get(k), str) and item[k].strip()), None)
        if not isinstance(item, str) or not item.strip():
            raise OffboardError(f"{where}: expected a non-empty string or an object with one of {', '.join(KEYS)}")
        out.append((item.strip(), where))
    return out


def _from_csv(path: Path, text: str) -> list[tuple[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    column = next((header.index(k) for k in KEYS if k in header), None)
    if column is None:
        if len(header) > 1:
            raise OffboardError(f"{path}: line 1: the header names none of the columns {', '.join(KEYS)}")
        column, start = 0, 0  # one column and no header: every line is a person
    else:
        start = 1
    out = []
    for n, row in enumerate(rows[start:], start=start + 1):
        if not row or not any(c.strip() for c in row):
            continue
        if column >= len(row) or not row[column].strip():
            raise OffboardError(f"{path}: line {n}: no person in column {column + 1}")
        out.append((row[column].strip(), f"{path}: line {n}"))
    return out


def revoke_many(
    engine: Engine,
    people: list[tuple[str, str]],
    *,
    policy: str | None = None,
    approve: bool = False,
    approver: str | None = None,
    allow_destructive: bool = False,
    dry_run: bool = False,
    reason: str = "",
    threads: int = 8,
    progress: Callable[[dict[str, Any]], None] | None = None,
    confirm: Callable[[BulkResult], bool] | None = None,
    from_inventory: bool = False,
    sync: bool = True,
) -> BulkResult:
    """Resolve, plan, guard, estimate, then (unless halted, a dry run, or ``confirm`` says no) run everyone's cases.

    ``from_inventory``: plan from the inventory (see the module docstring); ``sync``: list every system first
    (else the stored inventory as last synced)."""
    approver = (approver or "").strip() or None
    if approve and not approver:
        raise ApprovalRequired("--approve needs --approver NAME: the approval is recorded with the approver's name")
    resolved: list[Person] = []
    unknown = []
    known = _people_by_name(engine) if len(people) > 20 else {}
    for ref, where in people:
        try:
            resolved.append(known.get(identity_key(ref)) or engine.resolve(ref))
        except UnknownPerson as exc:
            unknown.append(f"{where}: {exc}")
    if unknown:
        raise UnknownPerson(f"{len(unknown)} of {len(people)} listed people are unknown: " + "; ".join(unknown[:20]))
    engine.check_connectors()
    resolved, successors = successors_staying(resolved)  # a manager leaving in the same run hands over nothing
    result = BulkResult(people=[p.id for p in resolved], dry_run=dry_run)
    if from_inventory:
        from ._inventory_plan import plan_from_inventory

        plans, result.sync, result.discovered = plan_from_inventory(engine, resolved, policy, sync, threads)
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="offboard-bulk-plan") as pool:
            plans = list(pool.map(lambda p: _plan(engine, p, policy), resolved))
    for person, plan in zip(resolved, plans, strict=True):
        if not isinstance(plan, str):
            plan.successor_note = successors.get(person.id)
        if isinstance(plan, str):
            result.nothing.append((person.id, plan))
        elif plan.actions or plan.errors:
            result.plans.append(plan)
        else:
            why = "every account found is protected" if plan.protected else "no account to act on"
            result.nothing.append((person.id, why))
    result.reasons = guard(result.plans, _inventory.active_counts(engine.store), engine.config.limits)
    result.destructive = destructive_reasons(result.plans)
    if not allow_destructive:  # a step offboard cannot undo halts the run, as it halts a sweep
        result.reasons += result.destructive
    result.eta = engine.estimate(result.plans)
    if dry_run:
        return result
    summary = {
        "listed": len(people),
        "cases": len(result.plans),
        "people": [p.person.id for p in result.plans],
        "limits": {"max_cases": engine.config.limits.max_cases, "max_percent": f"{engine.config.limits.max_percent:g}"},
        "eta": result.eta.to_dict(),
        **({"allowed_destructive": result.destructive} if allow_destructive and result.destructive else {}),
    }
    if result.reasons and not approve:
        result.halted = True
        engine.record("bulk_halted", None, {**summary, "reasons": result.reasons})
        log.warning("bulk revoke halted", reasons=result.reasons)
        return result
    if result.reasons:
        result.approved_by = approver
        engine.record("approval", None, {**summary, "scope": "bulk", "approver": approver, "reasons": result.reasons})
    if confirm is not None and not confirm(result):
        result.cancelled = True
        return result
    why = reason or "bulk revoke from a list"
    if result.approved_by:
        why += f"; approved by {result.approved_by}"
    case_ids = [engine.open_case(plan, trigger="bulk", reason=why) for plan in result.plans]
    if case_ids:
        result.cases = engine.run_cases(case_ids, progress)
        result.timing = dict(engine.last_timing) if len(case_ids) > 1 else {}
    engine.record(
        "bulk",
        None,
        {
            **summary,
            "opened": case_ids,
            "approved_by": result.approved_by,
            "incomplete": [c.case_id for c in result.cases if not c.ok],
            "measured": {system: t.to_entry() for system, t in result.timing.items()},
        },
    )
    return result


def _people_by_name(engine: Engine) -> dict[str, Person]:
    """Everyone in the people sources by id, email, alias and employee id (``identity_key``), read once: resolving
    a long list one reference at a time reads every source once per reference. The first source, then the first
    person in it, wins, as ``engine.resolve`` finds them; a reference not here is still resolved by it."""
    out: dict[str, Person] = {}
    for source in engine.people():
        for person in source.people():
            for name in (person.id, person.email, *person.aliases, person.employee_id):
                if name:
                    out.setdefault(identity_key(name), person)
    return out


def _plan(engine: Engine, person: Person, policy: str | None) -> Any:
    try:
        return engine.plan(person, policy, bulk=True)
    except UnknownPerson as exc:  # no account anywhere, no people source: nothing to do for this one
        return str(exc)
