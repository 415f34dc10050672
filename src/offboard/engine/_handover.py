"""The policy's ``handover`` settings turned into the parameters of the handover steps of one person's plan."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ..config._policy import Policy
from ..models import ActionKind, Person

__all__ = ["HANDOVER_KINDS", "handover_params", "successor", "successors_staying"]

#: Steps that hand something to the successor; they carry ``handover_to`` (and the auto-reply its text).
HANDOVER_KINDS = frozenset({ActionKind.HANDOVER_MAILBOX, ActionKind.SET_AUTO_REPLY, ActionKind.TRANSFER_OWNERSHIP})


def successor(person: Person, policy: Policy, params: dict[str, Any]) -> str | None:
    """Who takes over: the connector rule's ``to``, else the policy's ``handover.to`` (``manager``: the manager)."""
    explicit = params.get("to")
    if explicit:
        return str(explicit)
    return person.manager if policy.handover.to == "manager" else policy.handover.to


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
