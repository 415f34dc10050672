"""Every action kind of every installed connector is classified: reversible, no undo needed, or destructive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from offboard import ActionKind
from offboard.connector import NOTHING_TO_RESTORE, Connector
from offboard.plugins import connector_classes

DOC = Path(__file__).resolve().parents[2] / "docs" / "policies.md"


@pytest.mark.parametrize("name", sorted(connector_classes()))
def test_every_kind_is_classified_exactly_once(name):
    cls = connector_classes()[name]
    reversible, destructive = cls.reversible(), cls.destructive()
    nothing = cls.capabilities() & NOTHING_TO_RESTORE
    assert reversible | destructive | nothing == cls.capabilities()
    assert not (reversible & destructive) and not (destructive & nothing)


def test_the_policies_page_lists_the_bundled_classification():
    rows = {
        m.group(1): (m.group(2), m.group(4))
        for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \| ([^|]*) \| ([^|]*) \|$", DOC.read_text(), re.M)
    }
    for name, cls in connector_classes().items():
        if not cls.__module__.startswith("offboard_connectors."):
            continue
        assert name in rows, f"{name} is missing from the table in {DOC.name}"
        reversible, destructive = rows[name]
        assert sorted(k.value for k in cls.reversible()) == re.findall(r"[a-z_]+(?=,|$)", reversible.strip())
        assert sorted(k.value for k in cls.destructive()) == sorted(re.findall(r"\b([a-z]+_[a-z_]+)\b", destructive))


class _Deletes(Connector):
    name = "deletes-test"

    def disable_account(self, action):  # pragma: no cover - never called
        raise NotImplementedError

    def undo_disable_account(self, receipt):  # pragma: no cover
        raise NotImplementedError

    def revoke_sessions(self, action):  # pragma: no cover
        raise NotImplementedError

    def delete_account(self, action):  # pragma: no cover
        raise NotImplementedError


class _PartialUndo(_Deletes):
    name = "partial-test"
    destructive_kinds = frozenset({ActionKind.DISABLE_ACCOUNT, ActionKind.DELETE_ACCOUNT})


def test_the_default_is_what_has_no_undo_except_sessions_and_tokens():
    assert _Deletes.destructive() == {ActionKind.DELETE_ACCOUNT}
    assert _Deletes("x").is_destructive(ActionKind.DELETE_ACCOUNT)
    assert not _Deletes("x").is_destructive(ActionKind.REVOKE_SESSIONS)
    assert _Deletes("x").can_undo(ActionKind.DISABLE_ACCOUNT)


def test_an_override_where_undo_is_partial_wins_over_the_undo_method():
    assert _PartialUndo.destructive() == {ActionKind.DISABLE_ACCOUNT, ActionKind.DELETE_ACCOUNT}
    assert ActionKind.DISABLE_ACCOUNT not in _PartialUndo.reversible()
    assert not _PartialUndo("x").can_undo(ActionKind.DISABLE_ACCOUNT)
