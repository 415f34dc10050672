"""Undo: restore what a case changed where the system allows it, and say what it could not."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..config._durations import iso as _iso
from ..errors import ConnectorError
from ..models import ActionStatus, CaseStatus, FollowUpStatus, Receipt

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["undo_case"]


def undo_case(engine: Engine, case_id: str, actor: str = "") -> dict[str, list[str]]:
    """Restore what is reversible in ``case_id``, newest action first; record each step and the outcome."""
    case = engine._case(case_id)
    restored, irreversible, failed = [], [], []
    for row in reversed(engine.store.actions(case_id)):
        label = f"{row['system']} {json.loads(row['account'])['name']} {row['kind']}"
        if not row["receipt"] or row["status"] == ActionStatus.UNDONE.value:
            continue
        receipt = Receipt.from_dict(json.loads(row["receipt"]))
        connector = engine.connector(row["system"])
        if receipt.action.kind not in connector.reversible():
            irreversible.append(label)
            continue
        try:
            engine.call(row["system"], connector.undo, receipt)
        except ConnectorError as exc:
            failed.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        engine.store.update_action(row["id"], status=ActionStatus.UNDONE.value)
        restored.append(label)
        # What the connector said, when it applied, no undo can give back (a scrambled password).
        irreversible.extend(f"{label}: {why}" for why in receipt.before.get("irreversible") or ())
        engine.record(
            "action",
            case_id,
            {
                "case": case_id,
                "person": {"id": case["person_id"]},
                "system": row["system"],
                "account": {"id": row["account_id"], "name": json.loads(row["account"])["name"]},
                "kind": row["kind"],
                "result": "undone",
                "requested_at": _iso(engine.clock()),
                "responded_at": _iso(engine.clock()),
                "reference": None,
                "changed": True,
                "verification": None,
                "error": None,
                "attempts": 1,
            },
        )
    for item in engine.store.followups(case_id):
        if item["status"] == FollowUpStatus.SCHEDULED:
            engine.store.update_followup(item["id"], status=FollowUpStatus.CANCELLED.value)
    engine.store.update_case(case_id, status=CaseStatus.CANCELLED.value if not failed else case["status"])
    engine.record(
        "case_undone",
        case_id,
        {
            "case": case_id,
            "person": {"id": case["person_id"]},
            "actor": actor,
            "restored": restored,
            "irreversible": irreversible,
            "failed": failed,
        },
    )
    engine.record.seal()
    return {"restored": restored, "irreversible": irreversible, "failed": failed}
