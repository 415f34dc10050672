"""Handover end to end: the sandbox company's leaver, `offboard revoke`, `undo`, legal hold (issue 22)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import yaml

from offboard.sandbox import Sandbox

G = "google_workspace"


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(people=20, seed=7) as sb:
        yield sb


@pytest.fixture
def config_path(sandbox, tmp_path):
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(sandbox.config()))
    return path


def _payload(event):
    payload = event["payload"]
    return json.loads(payload) if isinstance(payload, str) else payload


def test_revoke_hands_over_in_the_declared_order_and_undo_restores_what_google_allows(sandbox, config_path, run):
    sim = sandbox.sim(G)
    leaver = sandbox.company.leaver
    manager = leaver.person.manager
    before_manager = sim.account(manager)
    old = sim.account(leaver.email)
    assert old["forwarding_filters"] == 1 and old["tokens"] and old["devices"] == ["APPROVED", "APPROVED"]
    assert old["licenses"] == ["1010020020"] and old["mail_delegates"] == list(leaver.mail_delegates)

    plan = run("--config", str(config_path), "plan", leaver.email, "--json")
    assert plan.exit_code == 0, plan.output
    planned = json.loads(plan.output)
    kinds = [a["kind"] for a in planned["actions"] if a["system"] == G]
    assert kinds.index("handover_mailbox") < kinds.index("disable_account")
    assert kinds.index("set_auto_reply") < kinds.index("disable_account")
    assert kinds.index("remove_forwarding") < kinds.index("disable_account")
    assert kinds.index("transfer_ownership") < kinds.index("remove_licenses")
    recent = {r["detail"] for r in planned["recent_setups"]}
    assert f"filter forwarding to {leaver.mail_forward_to[0]}" in recent
    assert any(d.startswith("OAuth grant to ") for d in recent) and any("app password" in d for d in recent)
    assert f"mailbox delegate {leaver.mail_delegates[0]}" in recent

    sim.log.clear()
    revoke = run("--config", str(config_path), "revoke", leaver.email, "--yes", "--json")
    assert revoke.exit_code == 0, revoke.output
    result = json.loads(revoke.output)
    assert result["status"] == "complete"
    mail, now = sim.mail(leaver.email), sim.account(leaver.email)
    assert mail["delegates"].get(manager) == "accepted"
    assert mail["vacation"]["enableAutoReply"] and manager in mail["vacation"]["responseBodyPlainText"]
    assert now["forwarding_filters"] == 0 and now["forwarding"] == [] and now["tokens"] == []
    assert now["devices"] == ["ACCOUNT_WIPING", "ACCOUNT_WIPING"]
    assert now["licenses"] == ["1010340001"]  # Enterprise Plus -> Enterprise Plus - Archived User
    assert now["suspended"] and now["drive_files"] == 0 and now["calendars"] == 0
    after_manager = sim.account(manager)
    assert after_manager["drive_files"] > before_manager["drive_files"]
    assert after_manager["calendars"] == before_manager["calendars"] + old["calendars"]
    # The declared order, as Google saw it: Gmail settings before the suspension, the licence after the transfer.
    served = [(e.method, e.path, e.body) for e in sim.log.entries()]
    first_suspend = next(i for i, (m, p, b) in enumerate(served) if m == "PUT" and b"suspended" in (b or b""))
    gmail_writes = [
        i for i, (m, p, _) in enumerate(served) if p.startswith("/gmail/") and m in ("POST", "PUT", "DELETE")
    ]
    assert gmail_writes and max(gmail_writes) < first_suspend
    transfer = next(i for i, (m, p, _) in enumerate(served) if m == "POST" and p.endswith("/transfers"))
    licence = next(i for i, (m, p, _) in enumerate(served) if p.startswith("/apps/licensing/") and m == "DELETE")
    assert transfer < licence

    bundle = config_path.parent / "evidence.zip"
    made = run("--config", str(config_path), "audit", "evidence", leaver.email, "--out", str(bundle))
    assert made.exit_code in (0, 2), made.output
    import zipfile

    with zipfile.ZipFile(bundle) as z:
        text = " ".join(z.read(n).decode("utf-8", "replace") for n in z.namelist() if not n.endswith(".pdf"))
    assert "recent_setups" in text and leaver.mail_forward_to[0] in text  # the set-ups are in the evidence

    undo = run("--config", str(config_path), "undo", result["case"], "--yes", "--json")
    assert undo.exit_code == 0, undo.output
    report = json.loads(undo.output)
    restored = " ".join(report["restored"])
    for kind in ("disable_account", "remove_licenses", "handover_mailbox", "set_auto_reply", "remove_memberships"):
        assert kind in restored
    irreversible = " ".join(report["irreversible"])
    for kind in ("remove_forwarding", "revoke_app_grants", "wipe_devices", "transfer_ownership"):
        assert kind in irreversible
    back = sim.account(leaver.email)
    assert not back["suspended"] and back["licenses"] == ["1010020020"] and not back["auto_reply"]
    assert back["mail_delegates"] == list(leaver.mail_delegates)  # the manager's delegation withdrawn


def test_gmail_refuses_a_suspended_users_settings_so_the_handover_runs_first(sandbox):
    import httpx

    sim = sandbox.sim(G)
    ident = next(i for i in sandbox.company.in_system(G) if i.person and i is not sandbox.company.leaver)
    user = sim._find(ident.email)
    token = "ya29.sbx-test-" + "k" * 20
    sim._tokens[token] = (ident.email.lower(), frozenset({"https://www.googleapis.com/auth/gmail.settings.basic"}))
    url = f"{sim.base_url}/gmail/v1/users/{ident.email}/settings/vacation"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(trust_env=False, verify=False) as client:
        assert client.get(url, headers=headers).status_code == 200
        user["suspended"] = True
        try:
            refused = client.get(url, headers=headers)
        finally:
            user["suspended"] = False
        other = client.get(url.replace(ident.email, sim.admin_email), headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["errors"][0]["reason"] == "failedPrecondition"
    assert other.status_code == 403  # another user's mailbox needs that user as the token's subject


def test_a_legal_hold_stops_deletion_follow_ups_and_is_named_in_status_and_the_report(
    sandbox, config_path, run, tmp_path
):
    from offboard.config._config import load_config
    from offboard.config._paths import data_dir
    from offboard.engine._engine import Engine

    ident = next(
        i
        for i in sandbox.company.identities
        if i.person and i.person.type == "employee" and G in i.systems and i is not sandbox.company.leaver
    )
    revoke = run("--config", str(config_path), "revoke", ident.email, "--yes", "--json", "--hold", "Matter 2026-17")
    assert revoke.exit_code == 0, revoke.output
    case = json.loads(revoke.output)["case"]
    status = run("--config", str(config_path), "status", case, "--json")
    assert json.loads(status.output)["legal_hold"] == "Matter 2026-17"
    assert "Legal hold: Matter 2026-17" in run("--config", str(config_path), "status", case).output

    later = Engine.open(load_config(config_path), data_dir())
    try:
        later.clock = lambda: later.store.case(case)["created_at"] + timedelta(days=31)
        assert later.run_due_followups() == []  # the 30-day deletion is due, and refused
        again = later.run_due_followups()
        held = [_payload(e) for e in later.store.events(case) if e["type"] == "followup_held"]
    finally:
        later.close()
    assert again == [] and held and all(e["legal_hold"] == "Matter 2026-17" for e in held)
    assert len(held) == len({e["followup"] for e in held})  # recorded once, not on every sweep
    assert sandbox.sim(G).account(ident.email) is not None  # not deleted

    out = tmp_path / "report.html"
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    period = ["--from", str(today - timedelta(days=1)), "--to", str(today + timedelta(days=1))]
    made = run("--config", str(config_path), "audit", "report", *period, "--out", str(out), "--person", ident.email)
    assert made.exit_code in (0, 2) and out.exists(), made.output
    assert "Matter 2026-17" in out.read_text()


def test_revoke_hold_needs_a_name(sandbox, config_path, run):
    ident = sandbox.company.leaver
    result = run("--config", str(config_path), "revoke", ident.email, "--yes", "--hold", "  ")
    assert result.exit_code == 2 and "--hold needs a name" in result.output


def test_a_failed_handover_holds_the_licence_back_but_never_the_suspension(sandbox, config_path, run):
    sim = sandbox.sim(G)
    ident = next(
        i
        for i in sandbox.company.identities
        if i.person
        and i.person.manager
        and G in i.systems
        and i is not sandbox.company.leaver
        and not sim.account(i.email)["suspended"]
    )
    boss = sim._find(ident.person.manager)
    boss["suspended"] = True  # Gmail refuses a suspended delegate
    try:
        revoke = run("--config", str(config_path), "revoke", ident.email, "--yes", "--json")
    finally:
        boss["suspended"] = False
    assert revoke.exit_code == 3, revoke.output
    by_kind = {a["kind"]: a for a in json.loads(revoke.stdout)["actions"] if a["system"] == G}
    assert by_kind["handover_mailbox"]["status"] == "failed" and "suspended" in by_kind["handover_mailbox"]["error"]
    assert by_kind["disable_account"]["status"] == "verified"  # access is cut regardless
    held = by_kind["remove_licenses"]
    assert held["status"] == "failed" and held["error"].startswith("held: remove_licenses runs only after handover")
    assert sim.account(ident.email)["licenses"] == ["1010020020"]  # the mailbox keeps its licence


def test_offboard_check_reports_the_set_ups_still_in_place(sandbox, config_path, run):
    sim = sandbox.sim(G)
    ident = next(
        i
        for i in sandbox.company.identities
        if i.person
        and i.app_passwords
        and i.oauth_apps
        and G in i.systems
        and not sim.account(i.email)["suspended"]
        and i is not sandbox.company.leaver
    )
    revoke = run("--config", str(config_path), "revoke", ident.email, "--policy", "suspend-only", "--yes", "--json")
    assert revoke.exit_code == 0, revoke.output
    check = run("--config", str(config_path), "check", ident.email, "--json")
    found = json.loads(check.stdout)
    details = [item["detail"] for item in found["leftovers"] if item["system"] == G]
    assert any(d.startswith("OAuth grant to ") for d in details), details
    assert any(d.startswith("app password ") for d in details), details


def test_a_manager_leaving_with_the_team_hands_over_nothing_the_next_manager_up_takes_over(tmp_path, run):
    """A layoff takes a team with its manager: the reports' mailboxes and files go to the first manager up the
    chain who stays, named on the plan, and every handover succeeds (Gmail refuses a suspended delegate)."""
    with Sandbox(people=20, seed=7) as sb:
        people = sb.company.people
        manager = next(p for p in people if p.manager and any(q.manager == p.email for q in people))
        reports = [q for q in people if q.manager == manager.email][:2]
        above = manager.manager
        listed = tmp_path / "layoff.csv"
        listed.write_text("email\n" + "".join(f"{p.email}\n" for p in (manager, *reports)))
        config = tmp_path / "offboard.yaml"
        config.write_text(yaml.safe_dump(sb.config()))

        plan = run("--config", str(config), "plan", "--from-file", str(listed), "--json")
        assert plan.exit_code == 0, plan.output
        notes = {p["person"]["id"]: p.get("successor") for p in json.loads(plan.output)["plans"]}
        for report in reports:
            assert notes[report.id] == (
                f"manager {manager.email} leaves in the same run: handing over to {above}, "
                "the first manager above who stays"
            )
        assert notes[manager.id] is None  # their own manager stays

        revoke = ("revoke", "--from-file", str(listed), "--yes", "--allow-destructive", "--approve", "--approver", "hr")
        done = run("--config", str(config), *revoke)  # the inventory was never synced: every system counts as 100%
        assert done.exit_code == 0, done.output
        sim = sb.sim(G)
        for report in reports:
            delegates = sim.mail(report.email)["delegates"]
            assert delegates.get(above) == "accepted" and manager.email not in delegates, delegates


def test_successors_staying_walks_up_past_everyone_leaving():
    from offboard import Person
    from offboard.inventory._sweep import successors_staying

    ceo = Person(id="ceo@x.example", email="ceo@x.example")
    vp = Person(id="vp@x.example", email="vp@x.example", manager="ceo@x.example")
    lead = Person(id="lead@x.example", email="lead@x.example", manager="vp@x.example")
    dev = Person(id="dev@x.example", email="dev@x.example", manager="lead@x.example")
    people, notes = successors_staying([vp, lead, dev])
    assert [p.manager for p in people] == ["ceo@x.example", "ceo@x.example", "ceo@x.example"]
    assert set(notes) == {"lead@x.example", "dev@x.example"}
    people, notes = successors_staying([ceo, vp, dev, lead])  # the whole chain leaves: nobody to hand over to
    assert [p.manager for p in people] == [None, None, None, None]
    assert "nobody above stays" in notes["dev@x.example"]
    a = Person(id="a@x.example", email="a@x.example", manager="b@x.example")
    b = Person(id="b@x.example", email="b@x.example", manager="a@x.example")
    assert [p.manager for p in successors_staying([a, b])[0]] == [None, None]  # a cycle ends, nobody stays
