"""Sweeps: revoke everyone past their end date who still holds an active account.

A sweep syncs the inventory, finds every person whose end date has passed (in their
time zone), plans from the inventory, and checks the guards: more than
``limits.max_cases`` cases, or more than ``limits.max_percent`` of a system's active
accounts, halts the sweep before any action and records why. ``approve=True`` with an
approver's name records the approval and proceeds. Cases open with trigger ``sweep``
and run in one parallel batch.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from ..errors import ApprovalRequired, OffboardError
from ..models import ActionKind, ActionStatus, CaseStatus, Person
from . import _inventory

__all__ = ["run_sweep", "SweepResult", "leavers", "past_end", "guard", "destructive_reasons", "successors_staying"]

log = structlog.get_logger("offboard.sweep")
REMOVING = {ActionKind.DISABLE_ACCOUNT.value, ActionKind.DELETE_ACCOUNT.value}


@dataclass
class SweepResult:
    """What a sweep found, whether it halted, and the cases it ran."""

    leavers: list[str] = field(default_factory=list)
    plans: list[Any] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    halted: bool = False
    dry_run: bool = False
    approved_by: str | None = None
    approval: str | None = None  # the approval request a halted sweep waits on
    cases: list[Any] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    sync: Any = None
    notices: int = 0
    retried: list[Any] = field(default_factory=list)  # owed work of earlier cases, retried by this sweep
    residual: list[Any] = field(default_factory=list)  # the residual-access check of recent leavers (check_since)
    # leavers for whom a listed system cannot be correlated: (person, system, why); on their plans too
    uncorrelated: list[tuple[str, str, str]] = field(default_factory=list)
    # steps offboard cannot undo (``destructive_reasons``): a halt reason unless allowed or approved
    destructive: list[str] = field(default_factory=list)
    allow_destructive: bool = False
    eta: Any = None  # the bulk run's estimate (offboard.engine._eta.Eta), before any action
    timing: dict[str, Any] = field(default_factory=dict)  # measured per system: access cut, cleanup end

    @property
    def ok(self) -> bool:
        return (
            not self.halted
            and all(c.ok for c in [*self.cases, *self.retried])
            and all(not r.leftovers for r in self.residual)
        )

    @property
    def message(self) -> str:
        if self.halted:
            # only destructive steps halted it: --allow-destructive is enough; a blast-radius guard needs approval
            only_destructive = not self.allow_destructive and len(self.reasons) == len(self.destructive)
            hint = "re-run with " + (
                "--allow-destructive (or --approve --approver NAME)"
                if only_destructive
                else "--approve --approver NAME"
            )
            return (
                "sweep halted before any action: "
                + "; ".join(self.reasons)
                + f". Check the people source; if this is right, {hint}"
                + (f" (or approve request {self.approval} from its page)" if self.approval else "")
            )
        if self.dry_run:
            verb = "would halt: " + "; ".join(self.reasons) if self.reasons else f"would open {len(self.plans)} case(s)"
            return f"dry run: {len(self.leavers)} person(s) past their end date; {verb}{self._unknown()}"
        incomplete = sum(not c.ok for c in self.cases)
        text = f"{len(self.cases)} case(s) opened and run, {incomplete} incomplete" if self.cases else "nothing to do"
        if self.retried:
            still = sum(not c.ok for c in self.retried)
            text += f"; owed work of {len(self.retried)} earlier case(s) retried, {still} still incomplete"
        if self.residual:
            left = sum(bool(r.leftovers) for r in self.residual)
            text += f"; {len(self.residual)} recent leaver(s) checked, {left} still hold access"
        return text + self._unknown()

    def _unknown(self) -> str:
        if not self.uncorrelated:
            return ""
        people = len({p for p, _, _ in self.uncorrelated})
        systems = ", ".join(sorted({s for _, s, _ in self.uncorrelated}))
        return f"; {people} leaver(s) could not be correlated in {systems}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "halted": self.halted,
            "dry_run": self.dry_run,
            "reasons": self.reasons,
            "destructive": self.destructive,
            "allow_destructive": self.allow_destructive,
            "approved_by": self.approved_by,
            "approval": self.approval,
            "leavers": self.leavers,
            "message": self.message,
            "notices": self.notices,
            "plans": [p.to_dict() for p in self.plans],
            "cases": [c.to_dict() for c in self.cases],
            "skipped": [{"person": p, "why": w} for p, w in self.skipped],
            "sync": self.sync.to_dict() if self.sync is not None else None,
            "retried": [c.to_dict() for c in self.retried],
            "residual": [r.to_dict() for r in self.residual],
            "uncorrelated": [{"person": p, "system": s, "why": w} for p, s, w in self.uncorrelated],
            "eta": self.eta.to_dict() if self.eta is not None else None,
            "measured": {system: t.to_dict() for system, t in self.timing.items()},
        }


def past_end(person: Person, now: datetime) -> bool:
    """True when ``person``'s end date has passed; a naive end date is read in their time zone."""
    end = person.end_date
    if end is None:
        return False
    if end.tzinfo is None:
        try:
            end = end.replace(tzinfo=ZoneInfo(person.timezone or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            raise OffboardError(f"{person.id}: unknown time zone {person.timezone!r}") from None
    return end <= now


def successors_staying(people: Iterable[Person]) -> tuple[list[Person], dict[str, str]]:
    """One batch of leavers with each manager who leaves in the same batch replaced by the first manager up the
    chain who does not (None when the chain ends inside the batch: the handover steps are then left out), and per
    person id the note that says so. A layoff takes teams with their managers: a mailbox handed to a manager who
    is suspended in the same run is refused, and the files would go to someone who has no access either."""
    people = list(people)
    leaving: dict[str, Person] = {}
    for person in people:
        for name in (person.id, person.email, *person.aliases):
            if name:
                leaving.setdefault(name.lower(), person)
    out, notes = [], {}
    for person in people:
        manager, seen = person.manager, set()
        while manager and manager.lower() in leaving and manager.lower() not in seen:
            seen.add(manager.lower())
            manager = leaving[manager.lower()].manager
        if manager and manager.lower() in leaving:  # managers who manage each other: nobody stays
            manager = None
        if manager != person.manager:
            stays = f"handing over to {manager}, the first manager above who stays" if manager else "nobody above stays"
            notes[person.id] = f"manager {person.manager} leaves in the same run: {stays}"
            person = dataclasses.replace(person, manager=manager)
        out.append(person)
    return out, notes


def leavers(engine: Any, now: datetime) -> list[Person]:
    """Everyone in the people sources whose end date has passed, once each."""
    found: dict[str, Person] = {}
    for source in engine.people():
        for person in source.people():
            if person.id not in found and past_end(person, now):
                found[person.id] = person
    return list(found.values())


def guard(plans: list[Any], active: dict[str, int], limits: Any) -> list[str]:
    """Why these plans must not run without approval (empty when they may)."""
    reasons = []
    if len(plans) > limits.max_cases:
        reasons.append(f"it would open {len(plans)} cases and limits.max_cases is {limits.max_cases}")
    touched: dict[str, set[str]] = defaultdict(set)
    for plan in plans:
        for action in plan.actions:
            touched[action.account.system].add(action.account.id)
    for system in sorted(touched):
        n, total = len(touched[system]), active.get(system, 0)
        percent = 100.0 * n / total if total else 100.0
        if percent > limits.max_percent:
            reasons.append(
                f"it would touch {n} of {total} active accounts in {system} ({percent:.1f}%) "
                f"and limits.max_percent is {limits.max_percent:g}%"
            )
    return reasons


def destructive_reasons(plans: Iterable[Any]) -> list[str]:
    """Why a bulk run of ``plans`` must not run unattended: per system and kind, the steps offboard cannot
    undo (``Plan.destructive_actions``) and how many accounts; empty when every step can be undone.
    ``--allow-destructive`` or an approval lets the run proceed."""
    counts: Counter[tuple[str, str]] = Counter()
    for plan in plans:
        for action in plan.destructive_actions:
            counts[(action.account.system, action.kind.value)] += 1
    return [
        f"it would {kind} on {n} account(s) in {system}, which offboard cannot undo"
        for (system, kind), n in sorted(counts.items())
    ]


def _handled(engine: Any, person_id: str) -> set[tuple[str, str]]:
    """Accounts a complete case already dealt with: not planned again even if still active."""
    done: set[tuple[str, str]] = set()
    finished = [CaseStatus.COMPLETE.value, CaseStatus.AWAITING_TASKS.value]
    for case in engine.store.find_cases(statuses=finished, person_id=person_id, limit=20):
        for row in engine.store.actions(case["id"]):
            done.add((row["system"], row["account_id"]))
    return done


def _running(engine: Any) -> set[str]:
    return {c["person_id"] for c in engine.store.find_cases(statuses=[CaseStatus.RUNNING.value], limit=100_000)}


def run_sweep(
    engine: Any,
    approve: bool = False,
    approver: str | list[str] | None = None,
    dry_run: bool = False,
    *,
    allow_destructive: bool = False,
    sync: bool = True,
    notify: bool = True,
    progress: Any = None,
    recorded: bool = False,
    expected: set[str] | None = None,
) -> SweepResult:
    """Find, guard, open and run the cases of everyone past their end date; see the module docstring.

    ``approver``: one name, or several when ``sweep.approvals`` asks for more than one different
    approver. ``recorded``: the approvals are already in the audit log (decided on the approval
    page); ``expected``: the people they approved, beyond whom the approval does not reach."""
    from ._approvals import approval_settings

    names = [approver] if isinstance(approver, str) or approver is None else list(approver)
    approvers = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    if approve and not approvers:
        raise ApprovalRequired("--approve needs --approver NAME: the approval is recorded with the approver's name")
    needed = approval_settings(engine.config)[0]
    if approve and len({a.casefold() for a in approvers}) < needed:
        raise ApprovalRequired(
            f"sweep.approvals is {needed}: name {needed} different approvers (--approver NAME, once for each)"
        )
    # a scheduled sweep (no flag) may be allowed once in the configuration: sweep.allow_destructive
    allow_destructive = allow_destructive or engine.config.sweep.get("allow_destructive") is True
    # failed actions of earlier cases stay owed until verified: retry those due first, then look for new leavers
    retried = [] if dry_run else engine.retry_owed(progress)
    result = _sweep(engine, approve, approvers, dry_run, sync, notify, progress, recorded, expected, allow_destructive)
    result.retried = retried
    since = engine.config.sweep.get("check_since")
    if since and not dry_run and not result.halted:  # what do recent leavers still hold, whatever the cases say?
        from ..config._durations import parse_duration

        result.residual = engine.check_recent(parse_duration(str(since)))
    return result


def _sweep(
    engine: Any,
    approve: bool,
    approvers: list[str],
    dry_run: bool,
    sync: bool,
    notify: bool,
    progress: Any,
    recorded: bool = False,
    expected: set[str] | None = None,
    allow_destructive: bool = False,
) -> SweepResult:
    result = SweepResult(dry_run=dry_run, allow_destructive=allow_destructive)
    if sync:
        result.sync = _inventory.sync(engine)
    now = engine.clock()
    people, successors = successors_staying(leavers(engine, now))  # managers leaving in this run hand over nothing
    result.leavers = [p.id for p in people]
    holdings = _inventory.active_accounts(engine.store, result.leavers)
    busy = _running(engine)
    unknown = _uncorrelated(engine, result.sync)
    for person in people:
        accounts = holdings.get(person.id, [])
        # a system holding accounts the rules could not tie to anyone is unknown for this person, not empty
        held = {a.system for a in accounts}
        open_questions = {s: why for s, why in unknown.items() if s not in held}
        result.uncorrelated += [(person.id, s, why) for s, why in open_questions.items()]
        if not accounts:
            continue
        if person.id in busy:
            result.skipped.append((person.id, "a case for this person is still running"))
            continue
        done = _handled(engine, person.id)
        accounts = [a for a in accounts if (a.system, a.id) not in done]
        if not accounts:
            continue
        plan = engine.plan_for(
            person,
            engine.policy_for(person),
            [a for a in accounts if a.system in engine.config.connectors],
            bulk=True,
        )
        plan.uncorrelated = open_questions
        plan.successor_note = successors.get(person.id)
        if plan.actions:
            result.plans.append(plan)
        elif plan.protected:
            result.skipped.append((person.id, "every remaining account is protected"))
    result.reasons = guard(result.plans, _inventory.active_counts(engine.store), engine.config.limits)
    result.destructive = destructive_reasons(result.plans)
    if not allow_destructive:  # a step offboard cannot undo halts the sweep like a blast-radius guard
        result.reasons += result.destructive
    result.eta = engine.estimate(result.plans) if result.plans else None
    if dry_run:
        return result
    people_ids = [p.person.id for p in result.plans]
    summary = {
        "uncorrelated": [{"person": p, "system": s, "why": w} for p, s, w in result.uncorrelated],
        "leavers": len(people),
        "cases": len(result.plans),
        "people": people_ids,
        "limits": {"max_cases": engine.config.limits.max_cases, "max_percent": f"{engine.config.limits.max_percent:g}"},
        **({"allowed_destructive": result.destructive} if allow_destructive and result.destructive else {}),
        **({"eta": result.eta.to_dict()} if result.eta is not None else {}),
    }
    beyond = sorted(set(people_ids) - expected) if expected is not None else []
    if beyond:  # approved for fewer people than it would now reach: ask again
        result.reasons.append(f"{len(beyond)} person(s) not in what was approved: {', '.join(beyond[:10])}")
    if result.reasons and (not approve or beyond):
        from ._approvals import request_for

        result.halted = True
        engine.record("sweep_halted", None, {**summary, "reasons": result.reasons})
        log.warning("sweep halted", reasons=result.reasons)
        try:
            result.approval = request_for(engine, result, summary)["id"]
        except Exception as exc:  # the halt stands even when the request cannot be kept or posted
            log.error("approval request not made", error=str(exc))
        return result
    if result.reasons:
        from ._approvals import cli_entry

        result.approved_by = ", ".join(approvers)
        if not recorded:
            for name in approvers:
                engine.record("approval", None, cli_entry(summary, result.reasons, name))
    case_ids = []
    for plan in result.plans:
        end = plan.person.end_date
        reason = f"end date {end.date().isoformat() if end else '?'} has passed"
        if result.approved_by:
            reason += f"; sweep approved by {result.approved_by}"
        case_ids.append(engine.open_case(plan, trigger="sweep", reason=reason, termination_at=end))
    if case_ids:
        result.cases = engine.run_cases(case_ids, progress)
        result.timing = dict(getattr(engine, "last_timing", {})) if len(case_ids) > 1 else {}
        _inventory.mark_inactive(engine.store, _disabled(result.cases))
    engine.record(
        "sweep",
        None,
        {
            **summary,
            "opened": case_ids,
            "approved_by": result.approved_by,
            "incomplete": [c.case_id for c in result.cases if not c.ok],
            "measured": {system: t.to_entry() for system, t in result.timing.items()},
        },
    )
    from ._approvals import close_pending

    close_pending(engine, "a later sweep ran")
    if notify:
        result.notices = _notices(engine)
    return result


def _uncorrelated(engine: Any, sync: Any) -> dict[str, str]:
    """Systems whose accounts the inventory cannot tie to people (see ``inventory.uncorrelated``), and
    systems whose sync just failed (their stored inventory may miss accounts)."""
    from ..config._policy import Protection

    protection = Protection.combine(engine.policies.get(engine.config.default_policy), engine.config.protected)
    unknown = _inventory.uncorrelated(engine.store, protection)
    for system in sync.systems if sync is not None else ():
        if not system.ok:
            unknown.setdefault(system.system, f"inventory sync failed, using its last inventory: {system.error}")
    return unknown


def _disabled(cases: Iterable[Any]) -> list[tuple[str, str]]:
    out = []
    for case in cases:
        for row in case.actions:
            if row["kind"] in REMOVING and row["status"] == ActionStatus.VERIFIED:
                out.append((row["system"], row["account_id"]))
    return out


def _notices(engine: Any) -> int:
    """Send due end-date notices and checklist reminders; a notifier failure never fails the sweep."""
    if not engine.config.notifiers:
        return 0
    from ..checklist._notifiers import send_end_date_notices
    from ..checklist._tasks import send_reminders

    sent = 0
    for what, send in (("end-date notices", send_end_date_notices), ("task reminders", send_reminders)):
        try:
            sent += len(send(engine))
        except Exception as exc:
            log.warning(f"{what} failed", error=str(exc))
    return sent


def plan_rows(result: SweepResult) -> list[dict[str, Any]]:
    """One row per planned person, for the CLI."""
    rows = []
    for plan in result.plans:
        end = plan.person.end_date
        rows.append(
            {
                "person": plan.person.id,
                "type": plan.person.type,
                "end_date": end.isoformat() if end else None,
                "accounts": len(plan.accounts),
                "actions": len(plan.actions),
                "systems": sorted({a.account.system for a in plan.actions}),
            }
        )
    return rows
