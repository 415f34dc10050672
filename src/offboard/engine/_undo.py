"""Undo: restore what a case changed where the system allows it, and say what it could not."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..config._durations import iso as _iso
from ..errors import ConnectorError
from ..models import Account, Action, ActionKind, ActionStatus, CaseStatus, FollowUpStatus, Receipt

if TYPE_CHECKING:
    from ..connector import Connector
    from ._engine import Engine

__all__ = ["undo_case"]


def undo_case(engine: Engine, case_id: str, actor: str = "") -> dict[str, list[str]]:
    """Restore what is reversible in ``case_id``, newest action first; record each step and the outcome."""
    case = engine._case(case_id)
    restored, irreversible, failed, original, destructive = [], [], [], [], []
    for row in reversed(engine.store.actions(case_id)):
        label = f"{row['system']} {json.loads(row['account'])['name']} {row['kind']}"
        if row["status"] == ActionStatus.UNDONE.value:
            continue
        receipt, from_original = _receipt(engine, case_id, row)
        if receipt is None:
            continue
        connector = engine.connector(row["system"])
        if not connector.can_undo(receipt.action.kind):
            irreversible.append(label)
            if connector.is_destructive(receipt.action.kind):  # named apart: the step took what undo cannot restore
                destructive.append(label)
            continue
        try:
            engine.call(row["system"], connector.undo, receipt)
        except ConnectorError as exc:
            failed.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        problem = _read_back(engine, row["system"], connector, receipt)
        if problem:
            failed.append(f"{label}: {problem}")
            continue
        engine.store.update_action(row["id"], status=ActionStatus.UNDONE.value)
        engine.store.originals.release(row["system"], row["account_id"], row["kind"])
        restored.append(label)
        if from_original:
            original.append(label)
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
            **({"destructive": destructive} if destructive else {}),
        },
    )
    engine.record.seal()
    return {
        "restored": restored,
        "irreversible": irreversible,
        "failed": failed,
        "original": original,
        "destructive": destructive,
    }


def _receipt(engine: Engine, case_id: str, row: dict[str, Any]) -> tuple[Receipt | None, bool]:
    """What to undo ``row`` from, and whether that is the account's kept original state.

    The original (read before offboard's first write to the account, ``store.originals``) wins
    over the receipt's own before-state when they differ: a re-run or a later case that found
    offboard's earlier change (a write whose reply was lost) read that change as its "before".
    A write sent without an answer (failed, or cut off) is undone from the original too.
    """
    receipt = Receipt.from_dict(json.loads(row["receipt"])) if row["receipt"] else None
    kept = engine.store.originals.get(row["system"], row["account_id"], row["kind"])
    if kept is None:
        return receipt, False
    before = kept["before"]
    if receipt is not None:
        own = {k: v for k, v in receipt.before.items() if k != "irreversible"}
        if own == before:
            return receipt, False
        extra = {"irreversible": receipt.before["irreversible"]} if receipt.before.get("irreversible") else {}
        return Receipt(receipt.action, receipt.changed, {**before, **extra}, receipt.reference), True
    if kept["case_id"] != case_id or row["requested_at"] is None:
        return None, False  # this case never sent the write
    account = Account.from_dict(json.loads(row["account"]))
    action = Action(ActionKind(row["kind"]), account, {**json.loads(row["params"]), "case": case_id})
    return Receipt(action, True, before), True


def _read_back(engine: Engine, system: str, connector: Connector, receipt: Receipt) -> str | None:
    """Read the account again after its undo; what still differs from the state restored, or None.

    Only for kinds whose connector can read a before-state (``before_<kind>``); others say nothing."""
    try:
        now, _ = engine.call(system, connector.read_before, receipt.action)
    except ConnectorError as exc:
        return f"restored, but reading it back failed: {type(exc).__name__}: {exc}"
    if now is None:
        return None
    want = {k: v for k, v in receipt.before.items() if k != "irreversible"}
    differ = sorted(k for k in want.keys() | now.keys() if _normal(want.get(k)) != _normal(now.get(k)))
    if differ:
        return f"read back after the undo, still not as before: {', '.join(differ)}"
    return None


def _normal(value: Any) -> str:
    """``value`` as comparable JSON: lists as sets (a directory does not keep value order)."""
    if isinstance(value, list):
        return json.dumps(sorted(_normal(v) for v in value))
    if isinstance(value, dict):
        return json.dumps({k: _normal(v) for k, v in sorted(value.items())})
    return json.dumps(value, default=str)
