"""Legal hold and recent set-ups: what a case carries besides its actions.

A case carries a legal hold when its person does (``Person.legal_hold``: from the people source's
``legal_hold`` field, an HR event's ``legal_hold``, or ``offboard revoke --hold NAME``). While it holds,
no deletion runs: the plan leaves ``delete_account`` out, and a deletion follow-up that falls due stays
scheduled and is refused, once recorded (``followup_held``) in the audit log. Connectors may also refuse
(Google Workspace checks Vault holds before it deletes).

Recent set-ups are what a leaver set up in the ``handover.recent_days`` before the end (forwarding
rules, filters, delegations, OAuth grants, app passwords), listed by connectors that can read them
(``recent_setups(person, accounts, since)``) so a security team sees possible exfiltration set-ups.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..config._logging import redact
from ..errors import ConnectorError
from ..models import Account, ActionKind, Person

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["DELETIONS", "recent_setups", "refuse_held", "hold_of"]

#: Kinds a legal hold stops.
DELETIONS = frozenset({ActionKind.DELETE_ACCOUNT})


def hold_of(case: dict[str, Any]) -> str | None:
    """The legal hold a stored case carries, or None."""
    try:
        return json.loads(case.get("person") or "{}").get("legal_hold") or None
    except ValueError:
        return None


def recent_setups(
    engine: Engine, person: Person, accounts: list[Account], days: int, now: datetime
) -> list[dict[str, Any]]:
    """What connectors list as set up by ``person`` in the ``days`` before the end (or ``now``)."""
    end = person.end_date if person.end_date and person.end_date < now else now
    since = end - timedelta(days=days)
    out: list[dict[str, Any]] = []
    for name in engine.enabled_connectors():
        connector = engine.connector(name)
        method = getattr(connector, "recent_setups", None)
        mine = [a for a in accounts if a.system == name]
        if method is None or not mine:
            continue
        try:
            found, _ = engine.call(name, method, person, mine, since)
        except ConnectorError as exc:
            out.append({"system": name, "error": redact(f"{type(exc).__name__}: {exc}")})
            continue
        out += [item.to_dict() for item in found]
    return out


def refuse_held(engine: Engine, origin: str, case: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The follow-ups of ``origin`` that may run now; the deletions its legal hold stops are recorded once."""
    hold = hold_of(case)
    if not hold:
        return items
    allowed: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for item in items:
        kind = json.loads(item["action"]).get("kind")
        (refused if kind in {k.value for k in DELETIONS} else allowed).append(item)
    if refused:
        seen = {
            e["payload"].get("followup") if isinstance(e["payload"], dict) else json.loads(e["payload"]).get("followup")
            for e in engine.store.events(origin)
            if e["type"] == "followup_held"
        }
        for item in refused:
            if item["id"] in seen:
                continue
            action = json.loads(item["action"])
            engine.record(
                "followup_held",
                origin,
                {
                    "case": origin,
                    "person": {"id": case["person_id"]},
                    "followup": item["id"],
                    "kind": action.get("kind"),
                    "system": (action.get("account") or {}).get("system"),
                    "legal_hold": hold,
                    "note": f"not run: {case['person_id']} is under legal hold {hold!r}",
                },
            )
    return allowed
