"""The policy's ``handover`` block: validated with errors naming the file and key, rendered per person."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from offboard import ActionKind, Person
from offboard.config._policy import Policy, load_policy
from offboard.engine._handover import handover_params, successor
from offboard.errors import PolicyError


def _write(tmp_path, handover: str):
    path = tmp_path / "leavers.yaml"
    path.write_text(f"name: leavers\nactions: [disable_account]\nhandover:\n{handover}")
    return path


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ("  to: the-boss\n", "handover.to"),
        ("  auto_reply: 'Write to {boss}'\n", "handover.auto_reply"),
        ("  auto_reply: ''\n", "handover.auto_reply"),
        ("  recent_days: -1\n", "handover.recent_days"),
        ("  forward_to: x@corp.example\n", "handover.forward_to"),
    ],
)
def test_a_bad_handover_block_names_the_file_and_the_key(tmp_path, block, words):
    path = _write(tmp_path, block)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_the_auto_reply_names_the_successor_and_the_last_day():
    policy = Policy.model_validate(
        {
            "name": "p",
            "actions": ["set_auto_reply"],
            "handover": {"auto_reply": "{name} left on {last_day}; write to {manager}.", "auto_reply_subject": "Bye"},
        }
    )
    person = Person(
        id="ana@corp.example",
        email="ana@corp.example",
        name="Ana Lima",
        manager="rui@corp.example",
        end_date=datetime(2026, 5, 29, 17, tzinfo=UTC),
    )
    params = handover_params(person, policy, ActionKind.SET_AUTO_REPLY, {})
    assert params == {
        "handover_to": "rui@corp.example",
        "auto_reply": "Ana Lima left on 2026-05-29; write to rui@corp.example.",
        "auto_reply_subject": "Bye",
    }
    assert handover_params(person, policy, ActionKind.DISABLE_ACCOUNT, {}) == {}


def test_the_successor_is_the_rules_to_then_the_policys_then_the_manager():
    person = Person(id="a@corp.example", manager="m@corp.example")
    by_manager = Policy.model_validate({"name": "p", "actions": ["handover_mailbox"]})
    named = Policy.model_validate({"name": "p", "actions": ["handover_mailbox"], "handover": {"to": "it@corp.example"}})
    assert successor(person, by_manager, {}) == "m@corp.example"
    assert successor(person, named, {}) == "it@corp.example"
    assert successor(person, named, {"to": "x@corp.example"}) == "x@corp.example"
    assert successor(Person(id="ceo@corp.example"), by_manager, {}) is None
