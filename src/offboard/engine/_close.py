"""Closing a case: complete or incomplete from its actions' read-backs, recorded, then announced."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import structlog

from .. import plugins
from ..checklist._tasks import counts as task_counts
from ..config._logging import redact
from ..models import ActionStatus, CaseStatus, Person
from ._plan import CaseResult
from ._recorder import iso as _iso

if TYPE_CHECKING:
    from ._check import SystemCheck
    from ._engine import Engine
    from ._schedule import Gate

__all__ = ["close_case"]

log = structlog.get_logger("offboard.engine")


def close_case(
    engine: Engine,
    case_id: str,
    seal: bool = True,
    gate: Gate | None = None,
    checked: dict[str, SystemCheck] | None = None,
) -> CaseResult:
    """Decide ``complete`` or ``incomplete`` from the actions and record the close (``gate``: a bulk run's, which
    holds the closing check's reads on each system until that system has cut everyone's access; ``checked``: the
    systems the run has already checked for this case)."""
    case = engine._case(case_id)
    if engine.config.cases.check_on_close:  # the last word before the close: what does the person still hold?
        from ._check import check_case

        check_case(engine, case, gate, checked)
    rows = engine.store.actions(case_id)
    counts: dict[str, int] = defaultdict(int)
    reasons = [case["detail"]] if case["detail"] else []
    for row in rows:
        counts[row["status"]] += 1
        if row["status"] != ActionStatus.VERIFIED.value:
            account = json.loads(row["account"])["name"]
            why = row["error"] or (json.loads(row["verification"])["detail"] if row["verification"] else row["status"])
            reasons.append(f"{row['system']} {account} {row['kind']}: {row['status']} ({why})")
    automated = CaseStatus.COMPLETE if not reasons else CaseStatus.INCOMPLETE
    checklist = task_counts(engine.store, case_id)
    status = CaseStatus.AWAITING_TASKS if automated is CaseStatus.COMPLETE and checklist["blocking_open"] else automated
    now = engine.clock()
    # "done" is when the system answered the write that the read-back then confirmed (as the log says)
    verified_at = [r["responded_at"] or r["verified_at"] for r in rows if r["status"] == ActionStatus.VERIFIED.value]
    termination = case["termination_at"] or case["created_at"]
    last = max(verified_at) if verified_at else None
    engine.record(
        "case_closed",
        case_id,
        {
            "case": case_id,
            "person": {"id": case["person_id"]},
            "status": status.value,
            "counts": dict(counts),
            "termination_at": _iso(termination),
            "last_verified_at": _iso(last),
            "elapsed_ms": int((last - termination).total_seconds() * 1000) if last else None,
            "automated": automated.value,
            **({"checklist": checklist} if checklist["total"] else {}),
        },
    )
    # The record first, then the status: a crash in between leaves the case open, and closing
    # it again adds a second, identical close (the log's last word counts), never a missing one.
    engine.store.update_case(case_id, status=status.value, closed_at=now, detail="\n".join(reasons))
    engine.leases.release(case_id)
    if seal:
        engine.record.seal()
    _notify_closed(engine, {**case, "status": status.value}, reasons)
    return CaseResult(case_id, case["person_id"], status, engine.store.actions(case_id), "\n".join(reasons), checklist)


def _notify_closed(engine: Engine, case: dict[str, Any], reasons: list[str]) -> None:
    """Call the ``case_closed`` hooks with the public ``CaseClosed``, never the engine itself."""
    from ..cases import CaseClosed
    from ..checklist._notifiers import notify

    try:
        closed = CaseClosed(
            id=case["id"],
            person=Person.from_dict(json.loads(case["person"])),
            status=case["status"],
            trigger=case["trigger"],
            policy=case["policy"],
            reason=case["reason"] or "",
            summary=tuple(reasons),
            notify=lambda notice: notify(engine.config, "case_closed", notice),
        )
        plugins.get_plugin_manager().hook.case_closed(case=closed)
    except Exception as exc:  # a notifier must never change a case's outcome
        log.warning("case_closed hook failed", case=case["id"], error=redact(str(exc)))
