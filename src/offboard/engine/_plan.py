"""What a case will do (``Plan``) and what it did (``CaseResult``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..config._policy import Policy
from ..models import Account, Action, ActionKind, CaseStatus, Person

__all__ = ["Plan", "CaseResult"]


@dataclass
class Plan:
    """What would happen for one person, before anything is written."""

    person: Person
    policy: Policy
    actions: list[Action]
    protected: list[tuple[Account, str]] = field(default_factory=list)
    unsupported: list[tuple[Account, ActionKind]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # system -> why: listed by the inventory, but whether this person holds an account there is unknown (sweeps)
    uncorrelated: dict[str, str] = field(default_factory=dict)
    later: list[tuple[Action, timedelta]] = field(default_factory=list)
    tasks: list[Any] = field(default_factory=list)  # offboard.checklist._tasks.TaskSpec, due from ``as_of``
    as_of: datetime | None = None  # when the plan was made; None: no checklist was drawn up (a follow-up)
    # (system, account id, kind) of the steps offboard cannot undo (``Connector.is_destructive``), later ones too
    destructive: set[tuple[str, str, str]] = field(default_factory=set)

    def is_destructive(self, action: Action) -> bool:
        return (action.account.system, action.account.id, action.kind.value) in self.destructive

    @property
    def destructive_actions(self) -> list[Action]:
        """The steps of this run that cannot be undone (what halts a bulk run without approval)."""
        return [a for a in self.actions if self.is_destructive(a)]

    # bulk plans: actions the vendor documents as done by another planned action (kind, documentation URL)
    covered: list[tuple[Action, ActionKind, str]] = field(default_factory=list)
    # steps moved from the policy's order to honour a connector's ordering constraint (``_ordering``)
    reordered: list[str] = field(default_factory=list)
    no_successor: list[str] = field(default_factory=list)  # handover steps left out: nobody to hand over to
    successor_note: str | None = None  # the manager leaves in the same run: who takes over instead (``_handover``)
    held: list[str] = field(default_factory=list)  # deletions left out: the person is under legal hold
    recent: list[dict[str, Any]] = field(default_factory=list)  # set-ups made before the end (``_hold``)

    @property
    def accounts(self) -> list[Account]:
        return list({a.account.ref: a.account for a in self.actions}.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "person": self.person.to_dict(),
            "policy": self.policy.name,
            "actions": [
                {
                    "system": a.account.system,
                    "account": a.account.name,
                    "kind": a.kind.value,
                    "destructive": self.is_destructive(a),
                }
                for a in self.actions
            ],
            "protected": [{"system": a.system, "account": a.name, "reason": r} for a, r in self.protected],
            "unsupported": [{"system": a.system, "account": a.name, "kind": k.value} for a, k in self.unsupported],
            "errors": self.errors,
            "uncorrelated": self.uncorrelated,
            "later": [
                {
                    "system": a.account.system,
                    "account": a.account.name,
                    "kind": a.kind.value,
                    "after_days": d.days,
                    "destructive": self.is_destructive(a),
                }
                for a, d in self.later
            ],
            "tasks": [t.to_entry() for t in self.tasks],
            **({"covered": [_covered(a, k, why) for a, k, why in self.covered]} if self.covered else {}),
            "reordered": list(self.reordered),
            "legal_hold": self.person.legal_hold,
            "held": list(self.held),
            "no_successor": list(self.no_successor),
            **({"successor": self.successor_note} if self.successor_note else {}),
            "recent_setups": list(self.recent),
        }


def _covered(action: Action, by: ActionKind, documented: str) -> dict[str, Any]:
    return {
        "system": action.account.system,
        "account": action.account.name,
        "kind": action.kind.value,
        "covered_by": by.value,
        "documented": documented,
    }


@dataclass
class CaseResult:
    """A case after a run: its status and every action's outcome."""

    case_id: str
    person_id: str
    status: CaseStatus
    actions: list[dict[str, Any]]
    detail: str = ""
    checklist: dict[str, int] = field(default_factory=dict)  # offboard.checklist._tasks.counts

    @property
    def ok(self) -> bool:
        """Every account verified (the checklist may still be open: see ``status``)."""
        return self.status in (CaseStatus.COMPLETE, CaseStatus.AWAITING_TASKS)

    @property
    def automated(self) -> str:
        """The accounts' part alone: complete, incomplete, or where the case stands."""
        return CaseStatus.COMPLETE.value if self.ok else self.status.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "case": self.case_id,
            "person": self.person_id,
            "status": self.status.value,
            "automated": self.automated,
            "checklist": dict(self.checklist),
            "detail": self.detail,
            "actions": self.outcomes,
        }

    @property
    def outcomes(self) -> list[dict[str, Any]]:
        """Each action's outcome: system, account (its name), kind, status, attempts, error, verification."""
        return [
            {
                "system": a["system"],
                "account": json.loads(a["account"])["name"],
                "kind": a["kind"],
                "status": a["status"],
                "attempts": a["attempts"],
                "error": a["error"],
                "verification": json.loads(a["verification"]) if a["verification"] else None,
            }
            for a in self.actions
        ]
