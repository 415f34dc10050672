"""The policy's ``handover`` settings turned into the parameters of the handover steps of one person's plan."""

from __future__ import annotations

from typing import Any

from ..config._policy import Policy
from ..models import ActionKind, Person

__all__ = ["HANDOVER_KINDS", "handover_params", "successor"]

#: Steps that hand something to the successor; they carry ``handover_to`` (and the auto-reply its text).
HANDOVER_KINDS = frozenset({ActionKind.HANDOVER_MAILBOX, ActionKind.SET_AUTO_REPLY, ActionKind.TRANSFER_OWNERSHIP})


def successor(person: Person, policy: Policy, params: dict[str, Any]) -> str | None:
    """Who takes over: the connector rule's ``to``, else the policy's ``handover.to`` (``manager``: the manager)."""
    explicit = params.get("to")
    if explicit:
        return str(explicit)
    return person.manager if policy.handover.to == "manager" else policy.handover.to


def handover_params(person: Person, policy: Policy, kind: ActionKind, given: dict[str, Any]) -> dict[str, Any]:
    """The parameters ``kind`` takes from the policy's ``handover`` block (none for other kinds); ``given``
    are the connector rule's parameters (its ``to`` wins). The planner leaves handover steps out when
    there is no successor; a connector refuses one that comes without ``handover_to``."""
    rule = policy.handover
    if kind not in HANDOVER_KINDS:
        return {}
    to = successor(person, policy, given)
    params: dict[str, Any] = {"handover_to": to}
    if kind is ActionKind.SET_AUTO_REPLY:
        fields = {
            "name": person.name or person.email or person.id,
            "email": person.email or person.id,
            "manager": to or "",
            "manager_name": to or "",
            "last_day": person.end_date.date().isoformat() if person.end_date else "",
        }
        params["auto_reply"] = rule.auto_reply.format(**fields)
        params["auto_reply_subject"] = rule.auto_reply_subject.format(**fields)
    return params
