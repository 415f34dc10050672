"""Owed work: a failed action stays owed and is retried with a backoff until verified, abandoned or escalated.

An action is *owed* while its status is ``failed`` or ``unverified`` in a case closed ``incomplete``.
``retry_owed`` (``offboard resume``, the server's worker, the distributed tick and every sweep)
puts the owed actions of each due case back to pending and runs them again in that same case,
whatever the account's state now: a person whose account is already disabled still owes the
memberships, tokens and licences that failed to go. The case closes again (a new ``case_closed``
entry: the log's last word counts) and is ``complete`` once every action is verified.

The wait before retry *n* (counting from 0) is ``cases.retry_after * 2**n``, at most
``cases.retry_max``, from the previous try (or the close). Work owed longer than
``cases.escalate_after`` is escalated once through the notifiers (event ``owed``). A person gives
up on one action with ``abandon`` (``offboard cases abandon``), recorded in the audit log; the
action is then ``skipped`` and no longer owed, and the case stays ``incomplete``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from ..config._durations import aware, iso, parse_duration
from ..config._logging import redact
from ..errors import OffboardError
from ..models import ActionStatus, CaseStatus, Person
from ._plan import CaseResult

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["Owed", "recent_complete", "owed", "retry_owed", "rediscover", "abandon", "backoff"]

log = structlog.get_logger("offboard.owed")
OWED = (ActionStatus.FAILED.value, ActionStatus.UNVERIFIED.value)


def recent_complete(engine: Engine, person_id: str) -> dict[str, Any] | None:
    """The newest complete case of ``person_id`` closed within ``cases.again_within``, or None."""
    within = parse_duration(engine.config.cases.again_within)
    since = engine.clock() - within
    for case in engine.store.find_cases(
        statuses=[CaseStatus.COMPLETE.value, CaseStatus.AWAITING_TASKS.value], person_id=person_id, limit=5
    ):
        closed = aware(case["closed_at"] or case["created_at"])
        if closed >= since:
            return case
    return None


def backoff(config: Any, retries: int) -> timedelta:
    """The wait before retry number ``retries`` (0 for the first): doubling from retry_after, at most retry_max."""
    first, most = parse_duration(config.cases.retry_after), parse_duration(config.cases.retry_max)
    return min(first * (2 ** min(retries, 30)), most)


@dataclass
class Owed:
    """One incomplete case's owed actions and where their retries stand."""

    case_id: str
    person_id: str
    actions: list[dict[str, Any]]
    since: datetime  # when the case opened: the work has been owed since then
    last_try: datetime  # the last retry, else when the case closed
    retries: int = 0
    escalated: bool = False
    due_at: datetime = field(init=False)

    def describe(self, row: dict[str, Any]) -> str:
        account = json.loads(row["account"])["name"]
        why = row["error"] or (json.loads(row["verification"])["detail"] if row["verification"] else row["status"])
        return f"{row['system']} {account} {row['kind']}: {row['status']} ({why})"

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "person": self.person_id,
            "owed_since": iso(self.since),
            "age_seconds": int((now - self.since).total_seconds()),
            "retries": self.retries,
            "next_retry_at": iso(self.due_at),
            "escalated": self.escalated,
            "actions": [
                {
                    "id": r["id"],
                    "system": r["system"],
                    "account": json.loads(r["account"])["name"],
                    "kind": r["kind"],
                    "status": r["status"],
                    "error": r["error"],
                }
                for r in self.actions
            ],
        }


def owed(engine: Engine, case_id: str | None = None) -> list[Owed]:
    """Every case with owed actions (or just ``case_id``'s), oldest first."""
    by_case: dict[str, Owed] = {}
    for row in engine.store.owed_actions(case_id):
        item = by_case.get(row["case_id"])
        if item is None:
            since = aware(row["case_created_at"])
            item = by_case[row["case_id"]] = Owed(
                row["case_id"], row["person_id"], [], since, aware(row["case_closed_at"]) or since
            )
        item.actions.append(row)
    for item in by_case.values():
        for event in engine.store.events(item.case_id):
            if event["type"] == "owed_retry":
                item.retries += 1
                at = json.loads(event["payload"]).get("at")
                if at:
                    item.last_try = max(item.last_try, aware(datetime.fromisoformat(at.replace("Z", "+00:00"))))
            elif event["type"] == "owed_escalated":
                item.escalated = True
        item.due_at = item.last_try + backoff(engine.config, item.retries)
    return list(by_case.values())


def retry_owed(
    engine: Engine,
    progress: Callable[[dict[str, Any]], None] | None = None,
    *,
    case_id: str | None = None,
    force: bool = False,
    wait: bool = True,
) -> list[CaseResult]:
    """Retry the owed actions of every case whose backoff has passed (``force``: now); escalate the overdue.

    ``wait=False`` (the distributed tick) only enqueues them. Returns the retried cases' results."""
    now = engine.clock()
    items = owed(engine, case_id)
    escalate(engine, items, now)
    reopened = []
    for item in items:
        if not force and now < item.due_at:
            continue
        enqueue = engine.dispatcher.enqueuer(item.case_id, item.actions) if engine.dispatcher else None
        # the close wrote every reason into the detail; what stays true is a system that could not be searched
        detail = "\n".join(
            line for line in (item.actions[0]["case_detail"] or "").splitlines() if ": discovery failed: " in line
        )
        if not engine.store.reopen_actions(item.case_id, [r["id"] for r in item.actions], detail, enqueue):
            continue  # closed or re-run meanwhile, or another case for the person is running
        engine.record(
            "owed_retry",
            item.case_id,
            {
                "case": item.case_id,
                "person": {"id": item.person_id},
                "attempt": item.retries + 1,
                "at": iso(now),
                "actions": [_ref(r) for r in item.actions],
            },
        )
        reopened.append(item.case_id)
    if reopened:
        log.info("retrying owed work", cases=len(reopened))
    if not wait:
        return []
    results = engine.run_cases(reopened, progress) if reopened else []
    return results + rediscover(engine, progress, case_id=case_id, force=force)


def rediscover(
    engine: Engine,
    progress: Callable[[dict[str, Any]], None] | None = None,
    *,
    case_id: str | None = None,
    force: bool = False,
) -> list[CaseResult]:
    """Search again the systems an incomplete case could not search, once its backoff has passed.

    A system that could not be searched (down, throttled past the budget, refusing the credential) has no
    actions in the case, so nothing of it is owed, yet the person may hold an account there. When the
    case owes nothing else, those systems are searched again and a new case for the person (trigger
    ``owed``) does what the policy asks there; ``owed_rediscovered`` on the old case names it (null when
    the person holds nothing there). The other systems are not planned again: their work is the old
    case's, done. The wait doubles with each such hop for the person, as owed retries do."""
    now = engine.clock()
    results: list[CaseResult] = []
    for case in engine.store.find_cases(statuses=[CaseStatus.INCOMPLETE.value], limit=10_000):
        if case_id is not None and case["id"] != case_id:
            continue
        lines = [line for line in (case["detail"] or "").splitlines() if ": discovery failed: " in line]
        if not lines or engine.store.owed_actions(case["id"]):
            continue  # nothing unsearched, or owed actions first (their retry keeps these lines)
        if any(e["type"] == "owed_rediscovered" for e in engine.store.events(case["id"])):
            continue  # already handed to a newer case
        hops = sum(
            any(e["type"] == "owed_rediscovered" for e in engine.store.events(c["id"]))
            for c in engine.store.find_cases(person_id=case["person_id"], limit=100)
        )
        closed = aware(case["closed_at"] or case["created_at"])
        if not force and now < closed + backoff(engine.config, hops):
            continue
        systems = [line.partition(": discovery failed: ")[0] for line in lines]
        person = Person.from_dict(json.loads(case["person"]))
        result = None
        try:
            accounts, errors = engine.gather(person, systems)
            plan = engine.plan_for(person, engine.policy_for(person, case["policy"]), accounts, errors)
            if plan.actions or plan.errors:  # still unsearchable: the new case says so, and is retried in turn
                why = f"case {case['id']} could not search {', '.join(systems)}"
                opened = engine.open_case(plan, trigger="owed", reason=why)
                result = engine.run_cases([opened], progress)[0]
        except OffboardError as exc:  # a running case for the person, a configuration problem: next time
            log.warning("could not search again", case=case["id"], error=redact(str(exc)))
            continue
        engine.record(
            "owed_rediscovered",
            case["id"],
            {
                "case": case["id"],
                "person": {"id": case["person_id"]},
                "systems": systems,
                "at": iso(now),
                "new_case": result.case_id if result is not None else None,
            },
        )
        if result is not None:
            results.append(result)
    return results


def escalate(engine: Engine, items: list[Owed], now: datetime) -> None:
    """Notify (event ``owed``) once for each case whose work is owed longer than ``cases.escalate_after``."""
    after = parse_duration(engine.config.cases.escalate_after)
    for item in items:
        if item.escalated or now - item.since < after:
            continue
        days = (now - item.since).total_seconds() / 86400
        lines = [item.describe(r) for r in item.actions]
        from ..checklist._notifiers import notify
        from ..notifiers import Notice

        try:
            reached = notify(
                engine.config,
                "owed",
                Notice(
                    kind="owed",
                    subject=f"offboard: access of {item.person_id} owed for {days:.1f} days (case {item.case_id})",
                    text="\n".join(
                        [
                            *lines,
                            "",
                            f"Retried {item.retries} time(s). Retry: offboard cases retry {item.case_id}; "
                            f"give up on one: offboard cases abandon {item.case_id} --action ID --reason ... --by NAME",
                        ]
                    ),
                ),
            )
        except OffboardError as exc:
            log.warning("owed escalation failed", case=item.case_id, error=redact(str(exc)))
            continue
        engine.record(
            "owed_escalated",
            item.case_id,
            {
                "case": item.case_id,
                "person": {"id": item.person_id},
                "owed_since": iso(item.since),
                "actions": [_ref(r) for r in item.actions],
                "notified": reached,
            },
        )
        item.escalated = True


def abandon(engine: Engine, case_ref: str, action_id: int, reason: str, by: str) -> CaseResult:
    """Give up on one owed action: recorded (who, why) in the audit log; the case stays incomplete."""
    reason, by = reason.strip(), by.strip()
    if not reason or not by:
        raise OffboardError("abandoning owed work needs --reason and --by NAME: both are recorded in the audit log")
    case = engine.find_case(case_ref)
    if case is None:
        raise OffboardError(f"no case matches {case_ref!r}")
    rows = {r["id"]: r for r in engine.store.actions(case["id"])}
    row = rows.get(action_id)
    if row is None:
        known = ", ".join(str(i) for i in rows) or "none"
        raise OffboardError(f"case {case['id']} has no action {action_id} (its actions: {known})")
    if case["status"] != CaseStatus.INCOMPLETE.value or row["status"] not in OWED:
        raise OffboardError(
            f"action {action_id} of case {case['id']} is not owed "
            f"(action {row['status']}, case {case['status']}); only failed or unverified actions of "
            "incomplete cases can be abandoned"
        )
    error = redact(f"abandoned by {by}: {reason}")
    engine.record(
        "owed_abandoned",
        case["id"],
        {"case": case["id"], "person": {"id": case["person_id"]}, **_ref(row), "reason": reason, "by": by},
    )
    engine.record(
        "action",
        case["id"],
        action_entry(case, row, ActionStatus.SKIPPED, error=error),
        action=(row["id"], {"status": ActionStatus.SKIPPED.value, "error": error}),
    )
    return engine.close_case(case["id"])


def action_entry(
    case: dict[str, Any],
    row: dict[str, Any],
    result: ActionStatus,
    *,
    verification: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The audit ``action`` entry that re-records a stored action ``row`` with a new ``result``."""
    account = json.loads(row["account"])
    return {
        "case": case["id"],
        "person": {"id": case["person_id"]},
        "system": row["system"],
        "account": {"id": account["id"], "name": account["name"]},
        "kind": row["kind"],
        "requested_at": iso(aware(row["requested_at"])),
        "responded_at": iso(aware(row["responded_at"])),
        "result": result.value,
        "reference": None,
        "changed": False,
        "verification": verification,
        "error": error,
        "attempts": row["attempts"],
        "recovered": False,
    }


def _ref(row: dict[str, Any]) -> dict[str, Any]:
    account = json.loads(row["account"])
    return {
        "action": row["id"],
        "system": row["system"],
        "account": {"id": account["id"], "name": account["name"]},
        "kind": row["kind"],
    }
