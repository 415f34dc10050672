"""Owed work: failed actions stay owed and are retried with a backoff until verified, abandoned or escalated.

An action whose case closed ``incomplete`` is *owed* while its status is ``failed`` or ``unverified``.
``retry_owed`` (called by ``offboard resume``, the server's worker and every sweep) runs the owed
actions that are due again, in their own case, whatever the account's state now: a person whose
account is already disabled still owes the memberships, tokens and licences that failed to go.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from ..config._durations import aware, parse_duration
from ..models import ActionStatus, CaseStatus

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["recent_complete"]

log = structlog.get_logger("offboard.owed")

OWED = (ActionStatus.FAILED.value, ActionStatus.UNVERIFIED.value)
#: A case's actions are owed only once it is final and not complete.
OWING_CASES = (CaseStatus.INCOMPLETE.value,)


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
