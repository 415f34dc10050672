"""Connectors' ordering constraints: the planned order, the note when a policy is reordered, the run-time hold."""

from __future__ import annotations

import pytest

from offboard import ActionKind as K
from offboard.engine._ordering import order_kinds, prerequisites
from offboard.errors import ConfigError

GOOGLE = (
    (K.HANDOVER_MAILBOX, K.DISABLE_ACCOUNT),
    (K.SET_AUTO_REPLY, K.DISABLE_ACCOUNT),
    (K.TRANSFER_OWNERSHIP, K.REMOVE_LICENSES),
)


def test_the_policy_order_stands_where_no_constraint_speaks():
    kinds = [K.REVOKE_SESSIONS, K.HANDOVER_MAILBOX, K.SET_AUTO_REPLY, K.DISABLE_ACCOUNT, K.REMOVE_MEMBERSHIPS]
    ordered, notes = order_kinds(kinds, GOOGLE)
    assert ordered == kinds and notes == []


def test_a_policy_cannot_reorder_past_a_constraint_it_is_reordered_with_a_note():
    kinds = [K.REVOKE_SESSIONS, K.DISABLE_ACCOUNT, K.REMOVE_LICENSES, K.HANDOVER_MAILBOX, K.TRANSFER_OWNERSHIP]
    ordered, notes = order_kinds(kinds, GOOGLE)
    assert ordered == [
        K.REVOKE_SESSIONS,
        K.HANDOVER_MAILBOX,
        K.DISABLE_ACCOUNT,
        K.TRANSFER_OWNERSHIP,
        K.REMOVE_LICENSES,
    ]
    assert len(notes) == 2
    assert any("handover_mailbox runs before disable_account" in n for n in notes)
    assert any("transfer_ownership runs before remove_licenses" in n for n in notes)


def test_constraints_between_kinds_not_planned_are_ignored():
    ordered, notes = order_kinds([K.REMOVE_LICENSES, K.DISABLE_ACCOUNT], GOOGLE)
    assert ordered == [K.REMOVE_LICENSES, K.DISABLE_ACCOUNT] and notes == []


def test_a_cycle_in_a_connectors_constraints_is_a_configuration_error_naming_it():
    cycle = ((K.DISABLE_ACCOUNT, K.REMOVE_LICENSES), (K.REMOVE_LICENSES, K.DISABLE_ACCOUNT))
    with pytest.raises(ConfigError, match=r"connector google: .*cycle among: disable_account, remove_licenses"):
        order_kinds([K.DISABLE_ACCOUNT, K.REMOVE_LICENSES], cycle, where="connector google")


def test_steps_that_cut_access_never_wait_for_a_handover():
    assert prerequisites(K.DISABLE_ACCOUNT, GOOGLE) == []
    assert prerequisites(K.REMOVE_LICENSES, GOOGLE) == [K.TRANSFER_OWNERSHIP]
