"""Reversible or destructive: which steps of a plan offboard cannot undo, and the bulk-run guard on them.

A step is destructive when the connector instance says so (``Connector.is_destructive``: by default a
capability without an ``undo_<kind>``, minus kinds that leave nothing to restore). ``plan`` marks such
steps; a bulk run (a sweep, a file of people) whose plans hold one halts before any action unless it
is run with ``--allow-destructive`` or approved by a named approver (``inventory._sweep.destructive_reasons``);
``undo`` names them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..models import Account, ActionKind

if TYPE_CHECKING:
    from ..connector import Connector

__all__ = ["destructive_steps"]


def destructive_steps(connector: Connector, account: Account, kinds: Iterable[ActionKind]) -> set[tuple[str, str, str]]:
    """``(system, account id, kind)`` for each of ``kinds`` that ``connector`` cannot undo on ``account``."""
    from ..connector import Connector

    if type(connector).is_destructive is Connector.is_destructive:  # the class's answer: work it out once
        destructive = connector.destructive()
        return {(account.system, account.id, k.value) for k in kinds if k in destructive}
    return {(account.system, account.id, k.value) for k in kinds if connector.is_destructive(k)}
