"""The policy's ``handover`` settings turned into the parameters of the handover steps of one person's plan."""

from __future__ import annotations

from typing import Any

from ..config._policy import Policy
from ..models import ActionKind, Person

__all__ = ["HANDOVER_KINDS", "handover_params"]

#: Steps that hand something to the successor; they carry ``handover_to`` (and the auto-reply its text).
HANDOVER_KINDS = frozenset({ActionKind.HANDOVER_MAILBOX, ActionKind.SET_AUTO_REPLY, ActionKind.TRANSFER_OWNERSHIP})


def handover_params(person: Person, policy: Policy, kind: ActionKind) -> dict[str, Any]:
    """The parameters ``kind`` takes from the policy's ``handover`` block (none for other kinds).

    ``handover_to`` is None when the policy says ``manager`` and the person has none: the connector
    then refuses the step with that reason rather than hand the mailbox to nobody."""
    rule = policy.handover
    if kind not in HANDOVER_KINDS:
        return {}
    to = person.manager if rule.to == "manager" else rule.to
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
