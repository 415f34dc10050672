"""The Microsoft 365 handover of the Entra connector against the Graph simulator: auto-reply, forwarding
inbox rules, OneDrive access for the manager, Intune retire, app grants, ordering and manual tasks.

(The contract kit runs these kinds too, in tests/connectors/test_entra.py: every capability is exercised.)
Every request sent here is checked against Graph v1.0 as msgraph-sdk describes it (tests/connectors/_spec.py).
"""

from __future__ import annotations

import copy

import pytest
import yaml

from offboard import Action, ActionKind, Person
from offboard.errors import PermanentError, PermissionDenied
from offboard_connectors.entra import EntraConnector

SYSTEM = "entra"
K = ActionKind


@pytest.fixture
def connector(sandbox_settings):
    connector = EntraConnector("entra", sandbox_settings)
    yield connector
    connector.close()


@pytest.fixture
def sim(sandbox):
    return sandbox.sim(SYSTEM)


def _someone(sandbox_people, sim, want=lambda uid: True):
    """A sandbox person with a manager (in Entra) for whom ``want(uid)`` holds."""
    for ident in sandbox_people:
        uid = sim._index.get(ident.email.lower())
        if uid and ident.person.manager and want(uid):
            return ident, uid
    raise AssertionError("no such sandbox person left")


def _forwarder(sim):
    return lambda uid: any(r["actions"].get("forwardTo") for r in sim.mailboxes[uid]["_rules"])


def test_forwarding_rules_go_and_come_back_on_undo_while_other_rules_stay(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim, _forwarder(sim))
    account = connector.discover(ident.person)[0]
    action = Action(K.REMOVE_FORWARDING, account)
    assert not connector.verify(action).ok, "a forwarding rule is in place: the read-back must say so"
    receipt = connector.apply(action)
    assert receipt.changed and "personal-mail.example" in receipt.detail
    verification = connector.verify(action, receipt)
    assert verification.ok and "no forwarding" in verification.detail
    assert [r["displayName"] for r in sim.mailboxes[uid]["_rules"]] == ["Newsletters"]
    assert connector.apply(action).changed is False
    connector.undo(receipt)
    rules = sim.mailboxes[uid]["_rules"]
    assert any(r["actions"].get("forwardTo") for r in rules) and len(rules) == 2


def test_auto_reply_names_the_manager_and_undo_turns_it_off(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    action = Action(K.SET_AUTO_REPLY, account, {"auto_reply": "{name} has left; write to {manager_email}."})
    receipt = connector.apply(action)
    reply = sim.mailboxes[uid]["automaticRepliesSetting"]
    assert reply["status"] == "alwaysEnabled"
    assert reply["internalReplyMessage"] == f"{ident.name} has left; write to {ident.person.manager}."
    assert connector.verify(action, receipt).ok
    connector.undo(receipt)
    assert sim.mailboxes[uid]["automaticRepliesSetting"]["status"] == "disabled"


def test_an_unknown_placeholder_in_the_auto_reply_template_is_named(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    with pytest.raises(PermanentError) as info:
        connector.apply(Action(K.SET_AUTO_REPLY, account, {"auto_reply": "Ask {boss} instead"}))
    assert "{boss}" in str(info.value) and "{manager}" in str(info.value)
    assert sim.mailboxes[uid]["automaticRepliesSetting"]["status"] == "disabled", "nothing half-done"


def test_a_user_without_a_mailbox_gets_a_clear_refusal_and_no_forwarding_to_remove(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    box = sim.mailboxes.pop(uid)
    try:
        with pytest.raises(PermanentError) as info:
            connector.apply(Action(K.SET_AUTO_REPLY, account))
        assert "MailboxNotEnabledForRESTAPI" in str(info.value) and account.name in str(info.value)
        receipt = connector.apply(Action(K.REMOVE_FORWARDING, account))
        assert not receipt.changed and connector.verify(Action(K.REMOVE_FORWARDING, account), receipt).ok
    finally:
        sim.mailboxes[uid] = box


def test_onedrive_is_shared_with_the_manager_and_unshared_on_undo(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    action = Action(K.TRANSFER_OWNERSHIP, account)
    assert not connector.verify(action).ok
    receipt = connector.apply(action)
    drive = sim.drives[sim.users[uid]["_drive"]]
    assert [(p["grantedTo"]["user"]["email"], p["roles"]) for p in drive["permissions"]] == [
        (ident.person.manager, ["write"])
    ]
    assert connector.verify(action, receipt).ok
    assert connector.apply(action).changed is False, "a second run finds the access in place"
    connector.undo(receipt)
    assert drive["permissions"] == []


def test_the_policy_can_name_who_takes_over_and_a_stranger_is_refused(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    other, _ = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    receipt = connector.apply(Action(K.TRANSFER_OWNERSHIP, account, {"handover_to": other.email}))
    drive = sim.drives[sim.users[uid]["_drive"]]
    assert [p["grantedTo"]["user"]["email"] for p in drive["permissions"]] == [other.email]
    connector.undo(receipt)
    with pytest.raises(PermanentError) as info:
        connector.apply(Action(K.TRANSFER_OWNERSHIP, account, {"handover_to": "nobody-7f3a@corp.example"}))
    assert "nobody-7f3a@corp.example" in str(info.value) and drive["permissions"] == []
    with pytest.raises(PermanentError, match="themself"):
        connector.apply(Action(K.TRANSFER_OWNERSHIP, account, {"handover_to": ident.email}))


def test_without_a_manager_the_handover_says_what_to_set(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    manager, sim.users[uid]["_manager"] = sim.users[uid]["_manager"], None
    try:
        with pytest.raises(PermanentError) as info:
            connector.apply(Action(K.TRANSFER_OWNERSHIP, account))
        assert "no manager" in str(info.value) and "handover" in str(info.value)
        receipt = connector.apply(Action(K.SET_AUTO_REPLY, account))  # the default reply needs no manager
        assert "no longer with the company" in sim.mailboxes[uid]["automaticRepliesSetting"]["internalReplyMessage"]
        connector.undo(receipt)
    finally:
        sim.users[uid]["_manager"] = manager


def test_devices_are_retired_and_disabled_and_the_kind_has_no_undo(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    action = Action(K.WIPE_DEVICES, account)
    assert not connector.verify(action).ok
    receipt = connector.apply(action)
    mine = [d for d in sim.managed_devices.values() if d["userId"] == uid]
    assert mine and all(d["managementState"] == "retirePending" for d in mine)
    objects = [o for o in sim.devices.values() if o["deviceId"] in {d["azureADDeviceId"] for d in mine}]
    assert objects and not any(o["accountEnabled"] for o in objects)
    verification = connector.verify(action, receipt)
    assert verification.ok and "check-in" in verification.detail
    assert connector.apply(action).changed is False, "retired devices are not retired again"
    assert K.WIPE_DEVICES not in EntraConnector.reversible()
    sim.complete_retirements()
    assert connector.verify(action, receipt).ok, "devices that left management stay verified"


def test_a_lying_retire_fails_verification_naming_the_account(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    with sim.knobs_set(lie_rate=1.0):
        receipt = connector.apply(Action(K.WIPE_DEVICES, account))
    verification = connector.verify(Action(K.WIPE_DEVICES, account), receipt)
    assert not verification.ok and account.name in verification.detail and "not retired" in verification.detail


def test_app_grants_go_admin_consent_stays_and_undo_restores(connector, sim, sandbox_people):
    ident, uid = _someone(
        sandbox_people,
        sim,
        lambda u: (
            any(g["principalId"] == u for g in sim.grants.values())
            and any(a["principalId"] == u for a in sim.app_roles.values())
        ),
    )
    account = connector.discover(ident.person)[0]
    tenant_wide = [g for g in sim.grants.values() if g["consentType"] == "AllPrincipals"]
    before = sim.handover_state(uid)
    action = Action(K.REVOKE_APP_GRANTS, account)
    assert not connector.verify(action).ok
    receipt = connector.apply(action)
    state = sim.handover_state(uid)
    assert state["grants"] == [] and state["app_roles"] == []
    assert [g for g in sim.grants.values() if g["consentType"] == "AllPrincipals"] == tenant_wide
    assert connector.verify(action, receipt).ok
    connector.undo(receipt)
    after = sim.handover_state(uid)
    assert (after["grants"], after["app_roles"]) == (before["grants"], before["app_roles"])


def test_a_missing_mailbox_permission_is_named(sim, sandbox_people, sandbox_settings):
    ident, _ = _someone(sandbox_people, sim)
    granted = sim.granted
    sim.granted = set(granted - {"MailboxSettings.ReadWrite"})
    lacking = EntraConnector("entra", sandbox_settings)
    try:
        account = lacking.discover(ident.person)[0]
        with pytest.raises(PermissionDenied) as info:
            lacking.apply(Action(K.SET_AUTO_REPLY, account))
        result = lacking.check()
    finally:
        sim.granted = granted
        lacking.close()
    assert "MailboxSettings.ReadWrite" in info.value.permissions
    # named by check(), without failing it: only policies with handover steps need it
    assert result.ok and "MailboxSettings.ReadWrite" in result.detail and "handover" in result.detail


def test_the_mailbox_and_onedrive_are_handed_over_before_the_licence_goes():
    ordering = set(EntraConnector.ordering)
    for first in (K.SET_AUTO_REPLY, K.REMOVE_FORWARDING, K.TRANSFER_OWNERSHIP):
        assert (first, K.REMOVE_LICENSES) in ordering and (first, K.DELETE_ACCOUNT) in ordering
    assert all(first != then for first, then in ordering)


def test_manual_tasks_carry_the_exchange_commands(connector):
    person = Person(id="ana@corp.example", email="ana@corp.example", manager="bo@corp.example")
    from offboard import Account

    account = Account("entra", "u1", "ana@corp.example")
    tasks = {t.id: t for t in connector.manual_tasks([Action(K.REMOVE_FORWARDING, account)], person)}
    assert "-ForwardingSmtpAddress $null" in tasks["exchange-mailbox-forwarding"].title
    assert "exchange-shared-mailbox" not in tasks
    planned = [Action(K.SET_AUTO_REPLY, account), Action(K.REMOVE_LICENSES, account)]
    tasks = {t.id: t for t in connector.manual_tasks(planned, person)}
    assert "-Type Shared" in tasks["exchange-shared-mailbox"].title and tasks["exchange-shared-mailbox"].blocking
    assert "bo@corp.example" in tasks["exchange-shared-mailbox"].title
    assert "-LitigationHoldEnabled $true" in tasks["exchange-litigation-hold"].title
    assert all(len(t.title) <= 300 for t in tasks.values())
    # a policy without a mailbox handover gets no Exchange steps (a licence removal alone is not a handover)
    assert (
        connector.manual_tasks([Action(K.DISABLE_ACCOUNT, account), Action(K.REMOVE_LICENSES, account)], person) == []
    )


def test_the_plan_shows_the_exchange_steps_as_open_checklist_tasks(sandbox, sandbox_people, sim, tmp_path, run):
    ident, _ = _someone(sandbox_people, sim)
    config = copy.deepcopy(sandbox.config())
    policy = tmp_path / "handover.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "name": "handover-ms",
                "actions": ["set_auto_reply", "remove_forwarding", "transfer_ownership", "remove_licenses"],
            }
        )
    )
    config["policies"] = [str(policy)]
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run("--config", str(path), "plan", ident.email, "--policy", "handover-ms", "--json")
    assert result.exit_code == 0, result.output
    assert "entra-exchange-shared-mailbox" in result.output and "Set-Mailbox" in result.output
    assert "entra-exchange-mailbox-forwarding" in result.output


def test_recent_setups_list_forwarders_and_consents_and_only_recent_app_assignments(connector, sim, sandbox_people):
    from datetime import UTC, datetime, timedelta

    ident, uid = _someone(
        sandbox_people,
        sim,
        lambda u: (
            _forwarder(sim)(u)
            and any(g["principalId"] == u for g in sim.grants.values())
            and any(a["principalId"] == u for a in sim.app_roles.values())
        ),
    )
    account = connector.discover(ident.person)[0]
    assignment = next(a for a in sim.app_roles.values() if a["principalId"] == uid)
    since = datetime.now(UTC) - timedelta(days=30)
    found = connector.recent_setups(ident.person, [account], since)
    texts = [f.detail for f in found]
    assert any("personal-mail.example" in t and "no creation date" in t for t in texts)
    assert any(t.startswith("delegated consent") for t in texts)
    assert not any("Expense Portal" in t for t in texts), "an assignment from 2024 is not recent"
    assignment["createdDateTime"] = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    found = connector.recent_setups(ident.person, [account], since.replace(tzinfo=None))
    assert any("Expense Portal" in f.detail and f.kind is K.REVOKE_APP_GRANTS for f in found)
    assert sim.handover_state(uid)["grants"], "reading the set-ups changed nothing"


def test_an_auto_reply_the_engine_already_filled_in_is_used_as_it_is(connector, sim, sandbox_people):
    ident, uid = _someone(sandbox_people, sim)
    account = connector.discover(ident.person)[0]
    text = "Ada has left {for good}; write to bo@corp.example"  # braces from the policy's {{ }}: not placeholders
    receipt = connector.apply(
        Action(K.SET_AUTO_REPLY, account, {"auto_reply": text, "handover_to": ident.person.manager})
    )
    assert sim.mailboxes[uid]["automaticRepliesSetting"]["internalReplyMessage"] == text
    connector.undo(receipt)
