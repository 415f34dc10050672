"""Connectors' ordering constraints: the order of one account's chain, and which steps wait for which.

A connector declares ``ordering = ((first, then), ...)``: when both kinds are planned for one account,
``then`` runs after ``first``, and only once ``first`` is verified. The planner puts a chain in that
order (a topological order that keeps the policy's order wherever no constraint says otherwise) and
notes every step it moved: a policy cannot reorder past a constraint, it is reordered with a note.

At run time a ``then`` whose ``first`` did not verify is held (failed with the reason, retried as owed
work), except the steps that cut access: those never wait for a handover (``ACCESS_CUTTING``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import ConfigError
from ..models import ActionKind

__all__ = ["ACCESS_CUTTING", "order_kinds", "prerequisites"]

#: Kinds that cut the person's access: a failed handover step never holds them back (security first).
ACCESS_CUTTING = frozenset(
    {ActionKind.REVOKE_SESSIONS, ActionKind.REVOKE_TOKENS, ActionKind.REVOKE_APP_GRANTS, ActionKind.DISABLE_ACCOUNT}
)

Constraint = tuple[ActionKind, ActionKind]


def order_kinds(
    kinds: Sequence[ActionKind], ordering: Iterable[Constraint], where: str = ""
) -> tuple[list[ActionKind], list[str]]:
    """``kinds`` (the policy's order) in an order that respects ``ordering``; and a note per moved step.

    Stable: among the kinds free to go next, the one the policy lists first goes first. A cycle in the
    connector's constraints is a configuration error naming the connector and the kinds."""
    planned = list(dict.fromkeys(kinds))
    index = {k: i for i, k in enumerate(planned)}
    edges = [(a, b) for a, b in ordering if a in index and b in index and a is not b]
    before: dict[ActionKind, set[ActionKind]] = {k: set() for k in planned}
    for first, then in edges:
        before[then].add(first)
    ordered: list[ActionKind] = []
    left = set(planned)
    while left:
        ready = [k for k in planned if k in left and not (before[k] & left)]
        if not ready:
            stuck = ", ".join(k.value for k in planned if k in left)
            raise ConfigError(f"the connector's ordering constraints form a cycle among: {stuck}", where=where or None)
        ordered.append(ready[0])
        left.discard(ready[0])
    notes = []
    for first, then in edges:
        if index[first] > index[then]:
            notes.append(
                f"{first.value} runs before {then.value}: the connector requires it"
                " (the policy listed it after; a policy cannot reorder past a connector's constraint)"
            )
    return ordered, notes


def prerequisites(kind: ActionKind, ordering: Iterable[Constraint]) -> list[ActionKind]:
    """The kinds that must be verified before ``kind`` runs (when they are planned); none for access-cutting kinds."""
    if kind in ACCESS_CUTTING:
        return []
    return [first for first, then in ordering if then is kind and first is not kind]
