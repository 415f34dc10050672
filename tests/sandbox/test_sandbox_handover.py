"""The handover endpoints of the Entra and Slack simulators answer bad requests as the vendors document:
a 4xx with the vendor's error shape (Graph ``{error: {code, message}}``, Slack ``ok: false``), never a 5xx,
and nothing changed."""

from __future__ import annotations

import msal
import pytest
import requests


@pytest.fixture(scope="module")
def graph(sandbox, secret):
    s = sandbox.config()["connectors"]["entra"]["settings"]
    session = requests.Session()
    session.trust_env = False
    session.verify = s["ca_file"]
    app = msal.ConfidentialClientApplication(
        s["client_id"],
        client_credential=secret(s["client_secret"]),
        authority=f"{s['authority_url']}/{s['tenant_id']}",
        http_client=session,
        instance_discovery=False,
    )
    token = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    session.headers["Authorization"] = "Bearer " + token["access_token"]
    return session, s["graph_url"]


@pytest.fixture(scope="module")
def someone(sandbox):
    sim = sandbox.sim("entra")
    person = next(p for p in sandbox.company.people if p.manager and sim._index.get(p.email.lower()))
    return sim, sim._index[person.email.lower()]


def _error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["message"], body
    return body["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "said"),
    [
        ({"automaticRepliesSetting": {"status": "on"}}, 400, "RequestBodyRead", "'on'"),
        ({"automaticRepliesSetting": {"statuss": "disabled"}}, 400, "RequestBodyRead", "'statuss'"),
        ({"autoReplies": {}}, 400, "RequestBodyRead", "'autoReplies'"),
        ({"automaticRepliesSetting": "on"}, 400, "RequestBodyRead", "object"),
        ({"userPurpose": "shared"}, 400, "ErrorInvalidRequest", "read-only"),
        ([], 400, "BadRequest", "JSON"),
    ],
)
def test_mailbox_settings_refuse_what_graph_refuses(graph, someone, body, status, code, said):
    session, base = graph
    sim, uid = someone
    before = dict(sim.mailboxes[uid]["automaticRepliesSetting"])
    message = _error(session.patch(f"{base}/users/{uid}/mailboxSettings", json=body), status, code)
    assert said in message and sim.mailboxes[uid]["automaticRepliesSetting"] == before


def test_a_user_without_a_mailbox_gets_mailbox_not_enabled(graph, someone):
    session, base = graph
    sim, uid = someone
    box = sim.mailboxes.pop(uid)
    try:
        _error(session.get(f"{base}/users/{uid}/mailboxSettings"), 404, "MailboxNotEnabledForRESTAPI")
        _error(session.get(f"{base}/users/{uid}/mailFolders/inbox/messageRules"), 404, "MailboxNotEnabledForRESTAPI")
    finally:
        sim.mailboxes[uid] = box


def test_message_rules_refuse_bad_rules_and_unknown_ids(graph, someone):
    session, base = graph
    sim, uid = someone
    rules = f"{base}/users/{uid}/mailFolders/inbox/messageRules"
    count = len(sim.mailboxes[uid]["_rules"])
    _error(session.post(rules, json={"displayName": "x", "sequence": 1}), 400, "ErrorInvalidRequest")
    _error(
        session.post(rules, json={"displayName": "x", "sequence": 1, "actions": {"fwd": []}}), 400, "RequestBodyRead"
    )
    _error(session.delete(f"{rules}/no-such-rule"), 404, "ErrorItemNotFound")
    assert len(sim.mailboxes[uid]["_rules"]) == count
    made = session.post(rules, json={"displayName": "tmp", "sequence": 9, "actions": {"markAsRead": True}})
    assert made.status_code == 201 and made.json()["id"]
    assert session.delete(f"{rules}/{made.json()['id']}").status_code == 204


def test_invite_refuses_new_guests_and_bad_roles(graph, someone):
    session, base = graph
    sim, uid = someone
    drive = sim.users[uid]["_drive"]
    root = sim.drives[drive]["root"]
    invite = f"{base}/drives/{drive}/items/{root}/invite"
    said = _error(
        session.post(invite, json={"recipients": [{"email": "someone@partner.example"}], "roles": ["write"]}),
        400,
        "invalidRequest",
    )
    assert "app-only" in said
    _error(session.post(invite, json={"recipients": [], "roles": ["write"]}), 400, "invalidRequest")
    manager = sim.users[uid]["_manager"]
    _error(session.post(invite, json={"recipients": [{"email": manager}], "roles": ["owner"]}), 400, "invalidRequest")
    _error(session.post(f"{base}/drives/{drive}/items/not-the-root/invite", json={}), 404, "itemNotFound")
    assert sim.drives[drive]["permissions"] == []


def test_retire_takes_no_body_and_unknown_devices_are_404(graph, someone):
    session, base = graph
    sim, uid = someone
    device = next(d for d in sim.managed_devices.values() if d["userId"] == uid)
    retire = f"{base}/deviceManagement/managedDevices/{device['id']}/retire"
    _error(session.post(retire, json={"keepUserData": True}), 400, "BadRequest")
    assert device["managementState"] == "managed"
    _error(session.post(f"{base}/deviceManagement/managedDevices/nope/retire"), 404, "ResourceNotFound")
    _error(
        session.get(f"{base}/devices", params={"$filter": "startswith(displayName,'L')"}),
        400,
        "Request_UnsupportedQuery",
    )
    obj = next(iter(sim.devices))
    _error(session.patch(f"{base}/devices/{obj}", json={"accountEnabled": "no"}), 400, "Request_BadRequest")
    _error(session.patch(f"{base}/devices/{obj}", json={"trustType": "x"}), 400, "RequestBodyRead")


def test_grants_refuse_duplicates_and_strangers(graph, someone):
    session, base = graph
    sim, uid = someone
    admin = next(g for g in sim.grants.values() if g["consentType"] == "AllPrincipals")
    body = {k: admin[k] for k in ("clientId", "consentType", "resourceId", "scope")}
    _error(session.post(f"{base}/oauth2PermissionGrants", json=body), 409, "Request_MultipleObjectsWithSameKeyValue")
    _error(session.post(f"{base}/oauth2PermissionGrants", json={"scope": "x"}), 400, "Request_BadRequest")
    _error(session.delete(f"{base}/oauth2PermissionGrants/no-such-grant"), 404, "Request_ResourceNotFound")
    roles = f"{base}/users/{uid}/appRoleAssignments"
    _error(
        session.post(roles, json={"principalId": "someone-else", "resourceId": "x", "appRoleId": "y"}),
        400,
        "Request_BadRequest",
    )
    _error(session.delete(f"{roles}/no-such-assignment"), 404, "Request_ResourceNotFound")


def test_the_manager_is_404_when_none_is_set(graph, someone):
    session, base = graph
    sim, uid = someone
    manager, sim.users[uid]["_manager"] = sim.users[uid]["_manager"], None
    try:
        _error(session.get(f"{base}/users/{uid}/manager"), 404, "Request_ResourceNotFound")
    finally:
        sim.users[uid]["_manager"] = manager
    assert session.get(f"{base}/users/{uid}/manager").json()["mail"] == manager


# -- Slack --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slack(sandbox, secret):
    s = sandbox.config()["connectors"]["slack"]["settings"]
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = "Bearer " + secret(s["token"])
    return sandbox.sim("slack"), session, s["api_url"]


def test_users_conversations_pages_and_refuses_bad_arguments(slack):
    sim, session, api = slack
    creator = next(c["creator"] for c in sim.channels.values() if not c["is_private"])
    seen, cursor = [], ""
    while True:
        answer = session.post(
            f"{api}users.conversations", data={"user": creator, "limit": 200, "cursor": cursor}
        ).json()
        assert answer["ok"], answer
        seen += [c["id"] for c in answer["channels"]]
        cursor = answer["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen and all(creator == sim.channels[c]["creator"] for c in seen)
    assert session.post(f"{api}users.conversations", data={"limit": 0}).json()["error"] == "invalid_limit"
    assert session.post(f"{api}users.conversations", data={"types": "rooms"}).json()["error"] == "invalid_types"
    assert session.post(f"{api}users.conversations", data={"user": "U-nobody"}).json()["error"] == "user_not_found"


# -- end to end: offboard revoke and undo with a handover policy --------------------------------------


def test_revoke_hands_the_microsoft_365_and_slack_work_over_and_undo_gives_back_what_it_can(sandbox, tmp_path, run):
    import copy

    import yaml

    entra, slack = sandbox.sim("entra"), sandbox.sim("slack")
    person = next(
        p
        for p in sandbox.company.people
        if p.manager
        and p.active
        and (uid := entra._index.get(p.email.lower()))
        and any(r["actions"].get("forwardTo") for r in entra.mailboxes[uid]["_rules"])
        and any(g["principalId"] == uid for g in entra.grants.values())
        and slack._index.get(p.email.lower())
        and any(slack._index[p.email.lower()] in g["members"] for g in slack.groups.values())
    )
    uid, sid = entra._index[person.email.lower()], slack._index[person.email.lower()]
    before_entra, before_groups = entra.handover_state(uid), slack.account(sid)["groups"]
    config = copy.deepcopy(sandbox.config())
    config["connectors"] = {k: v for k, v in config["connectors"].items() if k in ("entra", "slack")}
    policy = {
        "name": "handover-m365",
        "actions": [
            "set_auto_reply",
            "remove_forwarding",
            "transfer_ownership",
            "revoke_app_grants",
            "wipe_devices",
            "revoke_sessions",
            "remove_memberships",
            "disable_account",
            "remove_licenses",
        ],
    }
    (tmp_path / "handover.yaml").write_text(yaml.safe_dump(policy))
    config["policies"] = [str(tmp_path / "handover.yaml")]
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(config))

    plan = run("--config", str(path), "plan", person.email, "--policy", "handover-m365", "--json")
    assert plan.exit_code == 0, plan.output
    for task in ("entra-exchange-shared-mailbox", "entra-exchange-mailbox-forwarding", "slack-channels"):
        assert task in plan.output

    revoke = run("--config", str(path), "revoke", person.email, "--policy", "handover-m365", "--yes")
    assert revoke.exit_code == 0, revoke.output
    assert "awaiting_tasks" in revoke.output, "the Exchange steps are open tasks, not reported as done"
    state = entra.handover_state(uid)
    assert (
        state["auto_reply"]["status"] == "alwaysEnabled"
        and person.manager in state["auto_reply"]["internalReplyMessage"]
    )
    assert not any("forwardTo" in actions for _, actions in state["inbox_rules"])
    assert state["drive_shared_with"] == [(person.manager, ("write",))]
    assert state["devices"] and all(s == "retirePending" and enabled is False for _, s, enabled in state["devices"])
    assert state["grants"] == [] and state["app_roles"] == []
    assert slack.account(sid)["groups"] == [] and slack.account(sid)["active"] is False

    import re

    case = re.search(r"case-\d{8}-[0-9a-f]+", revoke.output).group(0)
    undo = run("--config", str(path), "undo", case, "--yes")
    assert undo.exit_code == 0, undo.output
    assert any("cannot be undone" in line and "wipe_devices" in line for line in undo.output.splitlines())
    after = entra.handover_state(uid)
    for key in ("auto_reply", "inbox_rules", "drive_shared_with", "grants", "app_roles"):
        assert after[key] == before_entra[key], key
    assert slack.account(sid)["groups"] == before_groups
