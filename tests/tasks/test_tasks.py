"""Checklist tasks: created from the policy and loaned equipment, closed with a name, reminded once, audited."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from offboard.checklist._tasks import list_tasks, send_reminders
from offboard.config._config import load_config
from offboard.engine._engine import Engine
from offboard.inventory._sweep import run_sweep
from offboard.models import CaseStatus

from .._smtp import mail_notifier, wait_for

DOCS = Path(__file__).resolve().parents[2] / "docs" / "checklists.md"
# 20:00 UTC on 31 October is 09:00 on 1 November in Auckland (UTC+13 in summer): the last day is 1 November.
TERMINATION = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)
CONTRACTOR = "user1@corp.example"


def write_people(root: Path) -> Path:
    hr = root / "hr.json"
    hr.write_text(
        json.dumps(
            [
                {"email": "mgr@corp.example", "name": "Mona Manager", "type": "employee"},
                {
                    "email": CONTRACTOR,
                    "name": "Kiri Contractor",
                    "type": "contractor",
                    "manager": "mgr@corp.example",
                    "timezone": "Pacific/Auckland",
                    "equipment": [{"asset_tag": "LAP-1001", "kind": "laptop", "loaned_on": "2025-03-01"}],
                },
                {
                    "email": "user2@corp.example",
                    "name": "Emil Employee",
                    "type": "employee",
                    "timezone": "Europe/Berlin",
                },
            ]
        )
    )
    (root / "equipment.csv").write_text(
        "person,asset_tag,kind,loaned_on\nuser1@corp.example,PHN-2002,phone,2025-04-10\n"
    )
    return hr


@pytest.fixture
def company(make_company, tmp_path):
    company = make_company(systems=2, people=4)
    hr = write_people(tmp_path)
    company.extra = {
        "people": [{"type": "hr_export", "settings": {"path": str(hr)}}],
        "tasks": {"equipment": str(tmp_path / "equipment.csv"), "owners": {"it": ["it-desk@corp.example"]}},
    }
    company.write_config()
    return company


def open_engine(company, tmp_path, now: datetime, **config) -> Engine:
    data = yaml.safe_load(company.config_path.read_text())
    data.update(config)
    company.config_path.write_text(yaml.safe_dump(data))
    (tmp_path / "home").mkdir(exist_ok=True)
    engine = Engine.open(load_config(company.config_path), tmp_path / "home")
    engine.clock = lambda: now
    return engine


def contractor_case(engine: Engine) -> str:
    plan = engine.plan(CONTRACTOR)
    case_id = engine.open_case(plan, trigger="webhook", termination_at=TERMINATION)
    engine.run_cases([case_id])
    return case_id


def offboarded_contractor(company, tmp_path) -> str:
    """The contractor's case, run to its close at TERMINATION; the engine closed again."""
    engine = open_engine(company, tmp_path, TERMINATION)
    try:
        return contractor_case(engine)
    finally:
        engine.close()


def audit_entries(home: Path) -> list[dict]:
    path = home / "audit" / "entries.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def test_a_contractor_with_two_devices_gets_the_policy_tasks_and_two_returns_due_in_their_zone(company, tmp_path, home):
    engine = open_engine(company, tmp_path, TERMINATION)
    try:
        case_id = contractor_case(engine)
        rows = list_tasks(engine.store, TERMINATION, case_id=case_id)
        result = engine.result(case_id)
    finally:
        engine.close()
    by_id = {r["task"]: r for r in rows}
    assert list(by_id) == [
        "announce-end",
        "handover",
        "exit-interview",
        "return-lap-1001",
        "return-phn-2002",
        "wipe-devices",
        "final-invoice",
    ]  # by due time
    owners = {t: r["owner"] for t, r in by_id.items()}
    assert owners == {
        "announce-end": "manager",
        "handover": "manager",
        "exit-interview": "manager",
        "return-lap-1001": "it",
        "return-phn-2002": "it",
        "wipe-devices": "it",
        "final-invoice": "finance",
    }
    # Due dates count from the last day in Auckland (1 November), at 17:00 local = 04:00 UTC the same day. The
    # case opens at 09:00 on the last day: the tasks due before it (-2d, -1d) are due at 17:00 that day, not overdue.
    assert {t: (r["due_date"], r["due_at"]) for t, r in by_id.items()} == {
        "announce-end": ("2026-11-01", "2026-11-01T04:00:00.000Z"),
        "handover": ("2026-11-01", "2026-11-01T04:00:00.000Z"),
        "exit-interview": ("2026-11-01", "2026-11-01T04:00:00.000Z"),
        "return-lap-1001": ("2026-11-01", "2026-11-01T04:00:00.000Z"),
        "return-phn-2002": ("2026-11-01", "2026-11-01T04:00:00.000Z"),
        "wipe-devices": ("2026-11-08", "2026-11-08T04:00:00.000Z"),
        "final-invoice": ("2026-11-15", "2026-11-15T04:00:00.000Z"),
    }
    assert {r["timezone"] for r in rows} == {"Pacific/Auckland"}
    assert by_id["return-lap-1001"]["title"] == "Return laptop LAP-1001 (loaned 2025-03-01) and check it for wear"
    assert by_id["return-phn-2002"]["asset"] == {"asset_tag": "PHN-2002", "kind": "phone", "loaned_on": "2025-04-10"}
    assert [t for t, r in by_id.items() if r["blocking"]] == ["return-lap-1001", "return-phn-2002", "wipe-devices"]
    assert [t for t, r in by_id.items() if r["overdue"]] == []
    # Every account verified, but blocking tasks are open: not complete.
    assert result.status is CaseStatus.AWAITING_TASKS and result.automated == "complete" and result.ok
    assert result.checklist == {"total": 7, "open": 7, "blocking_open": 3, "done": 0, "skipped": 0}
    opened = next(e for e in audit_entries(home) if e["type"] == "case_opened")
    assert [t["id"] for t in opened["tasks"]] == [
        "announce-end",
        "handover",
        "exit-interview",
        "wipe-devices",
        "final-invoice",
        "return-lap-1001",
        "return-phn-2002",
    ]
    closed = [e for e in audit_entries(home) if e["type"] == "case_closed"]
    assert [(c["status"], c["automated"], c["checklist"]["blocking_open"]) for c in closed] == [
        ("awaiting_tasks", "complete", 3)
    ]


def test_an_employee_without_equipment_gets_no_return_or_wipe_tasks_and_completes(company, tmp_path, run):
    result = run("--config", str(company.config_path), "revoke", "user2@corp.example", "--yes", "--json")
    assert result.exit_code == 0, result.output
    case = json.loads(result.output)
    assert case["status"] == "complete" and case["checklist"]["blocking_open"] == 0
    listed = json.loads(run("--config", str(company.config_path), "tasks", "--case", case["case"], "--json").output)
    assert [t["task"] for t in listed] == ["announce", "handover", "exit-interview", "final-pay", "keep-in-touch"]
    assert {t["timezone"] for t in listed} == {"Europe/Berlin"}


def test_done_and_skip_are_audited_and_the_last_blocking_task_completes_the_case(company, tmp_path, home, run):
    case_id = offboarded_contractor(company, tmp_path)
    cfg = ("--config", str(company.config_path))
    status = run(*cfg, "status", case_id, "--json")
    assert status.exit_code == 3 and json.loads(status.output)["status"] == "awaiting_tasks"

    done = run(
        *cfg,
        "tasks",
        "done",
        case_id,
        "return-lap-1001",
        "--by",
        "Ines (IT desk)",
        "--note",
        "returned, screen scratched",
    )
    assert done.exit_code == 0, done.output
    assert "still awaits blocking tasks" in done.output
    skipped = run(
        *cfg,
        "tasks",
        "skip",
        case_id[-8:],
        "return-phn-2002",
        "--by",
        "Ines (IT desk)",
        "--reason",
        "lost; reported to security",
    )
    assert skipped.exit_code == 0, skipped.output
    assert (
        json.loads(run(*cfg, "status", case_id, "--json").output)["status"] == "awaiting_tasks"
    )  # wipe-devices still open

    last = run(*cfg, "tasks", "done", case_id, "wipe-devices", "--by", "Ines (IT desk)", "--json")
    assert last.exit_code == 0, last.output
    assert json.loads(last.output)["case_status"] == "complete"
    status = run(*cfg, "status", case_id, "--json")
    assert status.exit_code == 0
    body = json.loads(status.output)
    assert body["status"] == "complete" and body["checklist"] == {
        "total": 7,
        "open": 4,
        "blocking_open": 0,
        "done": 2,
        "skipped": 1,
    }

    entries = [e for e in audit_entries(home) if e.get("case") == case_id]
    task_entries = [
        (e["task"], e["status"], e["by"], e["note"] if "note" in e else e["reason"])
        for e in entries
        if e["type"] == "task"
    ]
    assert task_entries == [
        ("return-lap-1001", "done", "Ines (IT desk)", "returned, screen scratched"),
        ("return-phn-2002", "skipped", "Ines (IT desk)", "lost; reported to security"),
        ("wipe-devices", "done", "Ines (IT desk)", ""),
    ]
    assert [e["status"] for e in entries if e["type"] == "case_closed"] == ["awaiting_tasks", "complete"]
    verified = run(*cfg, "audit", "verify", "--strict", "--json")
    assert verified.exit_code == 0, verified.output
    bundle = tmp_path / "evidence.zip"
    assert run(*cfg, "audit", "evidence", CONTRACTOR, "--out", str(bundle)).exit_code == 0
    checked = run(
        *cfg, "audit", "verify-evidence", str(bundle), "--trusted-keys", str(home / "audit" / "trusted-keys.txt")
    )
    assert checked.exit_code == 0, checked.output
    import zipfile

    with zipfile.ZipFile(bundle) as z:
        lines = [json.loads(x) for x in z.read("entries.jsonl").splitlines()]
    assert [(e["task"], e["by"]) for e in lines if e["type"] == "task"][0] == ("return-lap-1001", "Ines (IT desk)")


@pytest.mark.parametrize(
    "args, message",
    [
        (("done", "case-nope", "handover", "--by", "x"), "no case matches 'case-nope'"),
        (
            ("done", "{case}", "no-such-task", "--by", "x"),
            "has no task 'no-such-task' (its tasks: announce-end, handover",
        ),
        (("done", "{case}", "handover"), "Missing option '--by'"),
        (("done", "{case}", "handover", "--by", "   "), "--by NAME is required"),
        (("skip", "{case}", "handover", "--by", "x"), "Missing option '--reason'"),
        (("skip", "{case}", "handover", "--by", "x", "--reason", " "), "a skipped task needs a reason"),
        (("done", "{case}", "handover", "--by", "x" * 201), "give a name of at most 200"),
    ],
)
def test_bad_task_commands_say_what_is_wrong_and_change_nothing(company, tmp_path, home, run, args, message):
    engine = open_engine(company, tmp_path, TERMINATION)
    try:
        case_id = contractor_case(engine)
        before = list_tasks(engine.store, TERMINATION, case_id=case_id)
    finally:
        engine.close()
    entries = len(audit_entries(home))
    result = run("--config", str(company.config_path), "tasks", *[a.replace("{case}", case_id) for a in args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(audit_entries(home)) == entries
    engine = open_engine(company, tmp_path, TERMINATION)
    try:
        assert list_tasks(engine.store, TERMINATION, case_id=case_id) == before
    finally:
        engine.close()


def test_closing_a_task_twice_is_refused(company, tmp_path, run):
    case_id = offboarded_contractor(company, tmp_path)
    cfg = ("--config", str(company.config_path))
    assert run(*cfg, "tasks", "done", case_id, "handover", "--by", "Mona").exit_code == 0
    again = run(*cfg, "tasks", "skip", case_id, "handover", "--by", "Other", "--reason", "x")
    assert again.exit_code == 2 and "is already done (by Mona at " in again.output


def test_a_fresh_revoke_starts_with_no_overdue_task(company, run):
    """A termination effective now: the policy's -2d and -1d tasks are due after the case opens, at 17:00 local."""
    cfg = ("--config", str(company.config_path))
    before = datetime.now(UTC)
    revoked = run(*cfg, "revoke", "user2@corp.example", "--yes", "--json")
    assert revoked.exit_code == 0, revoked.output
    case = json.loads(revoked.output)["case"]
    assert json.loads(run(*cfg, "tasks", "--overdue", "--json").output) == []
    listed = json.loads(run(*cfg, "tasks", "--case", case, "--json").output)
    assert {t["task"] for t in listed} >= {"announce", "handover", "exit-interview"}
    for task in listed:
        due = datetime.fromisoformat(task["due_at"].replace("Z", "+00:00"))
        assert due >= before + timedelta(hours=4), task  # tasks.min_notice, by default 4h
        local = due.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.strftime("%H:%M"), local.date().isoformat()) == ("17:00", task["due_date"]), task


def test_a_case_opening_late_on_the_last_day_moves_what_is_due_sooner_to_the_next_due_time(company, tmp_path):
    # 03:00 UTC on 1 November is 16:00 in Auckland: the returns (0d, 17:00) would be due within the hour.
    opened = TERMINATION + timedelta(hours=7)
    engine = open_engine(company, tmp_path, opened, tasks={**company.extra["tasks"], "min_notice": "2h"})
    try:
        case_id = contractor_case(engine)
        rows = list_tasks(engine.store, opened, case_id=case_id)
    finally:
        engine.close()
    due = {r["task"]: (r["due_date"], r["due_at"], r["overdue"]) for r in rows}
    moved = ("2026-11-02", "2026-11-02T04:00:00.000Z", False)  # 17:00 the next day in Auckland
    assert due == {
        "announce-end": moved,
        "handover": moved,
        "exit-interview": moved,
        "return-lap-1001": moved,
        "return-phn-2002": moved,
        "wipe-devices": ("2026-11-08", "2026-11-08T04:00:00.000Z", False),  # +7d: left as the policy says
        "final-invoice": ("2026-11-15", "2026-11-15T04:00:00.000Z", False),
    }


def test_overdue_json_is_usable_from_a_script_and_every_field_is_documented(company, tmp_path, run):
    offboarded_contractor(company, tmp_path)
    result = run("--config", str(company.config_path), "tasks", "--overdue", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert rows and all(r["overdue"] and r["status"] == "open" for r in rows)  # now is long after the last day
    section = DOCS.read_text().split("### `offboard tasks --json`")[1].split("For example")[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    assert set(rows[0]) == documented
    by_owner = json.loads(run("--config", str(company.config_path), "tasks", "--owner", "IT", "--json").output)
    assert {r["owner"] for r in by_owner} == {"it"} and len(by_owner) == 3


def test_a_task_is_reminded_once_when_due_and_once_when_overdue_not_once_per_sweep(company, tmp_path, home, smtp):
    mail = mail_notifier(smtp, "task_due", "task_overdue")
    engine = open_engine(company, tmp_path, TERMINATION - timedelta(days=10), notifiers=mail)
    try:
        plan = engine.plan(CONTRACTOR)
        case_id = engine.open_case(plan, trigger="webhook", termination_at=TERMINATION)
        engine.run_cases([case_id])
        assert send_reminders(engine) == []  # nothing due within a day
        # 12 hours before the handover is due: a "due" reminder to the manager for announce-end and handover.
        engine.clock = lambda: datetime(2026, 10, 29, 16, 0, tzinfo=UTC)
        sent = send_reminders(engine)
        assert [(s["task"], s["kind"], s["to"]) for s in sent] == [
            ("announce-end", "due", ["mail:mgr@corp.example"]),
            ("handover", "due", ["mail:mgr@corp.example"]),
        ]
        assert send_reminders(engine) == []
        # After the returns are due: one "overdue" each; tasks that first show up overdue skip the "due" one.
        engine.clock = lambda: datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
        sent = send_reminders(engine)
        assert [(s["task"], s["kind"]) for s in sent] == [
            ("announce-end", "overdue"),
            ("handover", "overdue"),
            ("exit-interview", "overdue"),
            ("return-lap-1001", "overdue"),
            ("return-phn-2002", "overdue"),
        ]
        assert {s["task"]: s["to"] for s in sent}["return-lap-1001"] == ["mail:it-desk@corp.example"]
        for _ in range(3):  # scheduled sweeps send reminders too: nothing twice
            run_sweep(engine, sync=False)
        wait_for(lambda: len(smtp.messages) >= 7)
        assert send_reminders(engine) == []
    finally:
        engine.close()
    assert len(smtp.messages) == 7
    subjects = sorted(m["Subject"] for _, m in smtp.messages)
    assert "Overdue: Return laptop LAP-1001 (loaned 2025-03-01) and check it for wear (Kiri Contractor)" in subjects
    lap = next(m for _, m in smtp.messages if "LAP-1001" in m["Subject"])
    assert f"offboard tasks done {case_id} return-lap-1001 --by" in lap.get_content()
    assert "2026-11-01 17:00 Pacific/Auckland" in lap.get_content()
    reminders = [e for e in audit_entries(home) if e["type"] == "task_reminder"]
    assert len(reminders) == 7 and {e["case"] for e in reminders} == {case_id}


def test_a_dry_run_shows_the_checklist_and_writes_nothing(company, run, home):
    result = run("--config", str(company.config_path), "revoke", CONTRACTOR, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    tasks = json.loads(result.output)["plan"]["tasks"]
    assert [t["id"] for t in tasks][-2:] == ["return-lap-1001", "return-phn-2002"]
    assert audit_entries(home) == []


@pytest.mark.parametrize(
    "task, message",
    [
        (
            {"id": "x", "title": "t", "owner": "it", "due": "2 days"},
            "tasks.0.due: '2 days' is not a day offset such as -2d",
        ),
        ({"id": "x", "title": "t", "owner": "The Team"}, "tasks.0.owner: 'The Team' is not an owner"),
        ({"id": "Bad Id", "title": "t", "owner": "it"}, "tasks.0.id: 'Bad Id' is not a task id"),
        ({"id": "x", "title": "t", "owner": "it", "colour": "red"}, "tasks.0.colour: unknown key"),
    ],
)
def test_a_bad_task_in_a_policy_is_named_with_its_file_and_key(tmp_path, run, task, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "actions": ["disable_account"], "tasks": [task]}))
    result = run("policies", "validate", str(path))
    assert result.exit_code == 2
    assert f"{path}: {message}" in result.output


def test_a_bad_equipment_file_never_stops_a_revocation_and_a_blocking_task_names_it(company, tmp_path, run):
    (tmp_path / "equipment.csv").write_text(
        "person,asset_tag,kind,loaned_on\nuser1@corp.example,PHN-2002,phone,last spring\n"
    )
    cfg = ("--config", str(company.config_path))
    result = run(*cfg, "revoke", CONTRACTOR, "--yes", "--json")
    assert result.exit_code == 0, result.output  # access is revoked whatever the equipment list says
    assert "the equipment list could not be read; revoking anyway" in result.stderr
    case = json.loads(result.stdout)
    assert case["automated"] == "complete" and case["status"] == "awaiting_tasks"
    assert company.state("sys0", "user1")["enabled"] is False
    tasks = {t["task"]: t for t in json.loads(run(*cfg, "tasks", "--case", case["case"], "--json").stdout)}
    problem = tasks["equipment-list"]
    assert problem["blocking"] and problem["owner"] == "it"
    assert "equipment.csv: row 1: loaned_on 'last spring' is not a date (YYYY-MM-DD)" in problem["title"]
    assert "return-lap-1001" in tasks and "return-phn-2002" not in tasks  # the HR export's item still comes back


def test_a_leave_of_absence_takes_nothing_back(company, run):
    result = run(
        "--config", str(company.config_path), "revoke", CONTRACTOR, "--policy", "suspend-only", "--yes", "--json"
    )
    assert result.exit_code == 0, result.output
    case = json.loads(result.output)
    assert case["status"] == "complete" and case["checklist"] == {
        "total": 0,
        "open": 0,
        "blocking_open": 0,
        "done": 0,
        "skipped": 0,
    }


def test_the_server_reminds_owners_in_slack_once_each(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from offboard.sandbox import Sandbox

    from ..server._support import Clock, configure, new_secret, start, stop

    with Sandbox(people=40, seed=7, systems=("slack",)) as sb:
        sim = sb.sim("slack")
        sim.knobs.window_scale = 0.01  # do not wait out chat.postMessage's per-channel pacing here
        config = sb.config()
        slack = config["connectors"]["slack"]["settings"]
        leaver = next(
            p
            for p in sb.company.people
            if p.type == "employee" and p.active and p.manager and sim._index.get(p.manager.lower())
        )
        company = SimpleNamespace(
            config_path=tmp_path / "offboard.yaml",
            write_config=lambda **_: company.config_path.write_text(yaml.safe_dump(company.extra)),
        )
        secret = new_secret()
        configure(
            company,
            secret,
            monkeypatch,
            **config,
            notifiers={
                "it-slack": {
                    "type": "slack",
                    "events": ["task_due", "task_overdue"],
                    "settings": {"token": slack["token"], "channel": "C0ITOPS", "api_url": sb.url("slack") + "/api/"},
                }
            },
        )
        clock = Clock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
        server = start(company, secret, clock)
        try:
            assert server.engine.revoke(leaver.id).ok
            server.intake.run_once()
            manager = sim._index[leaver.manager.lower()]
            # At once: announce and handover (-2d) come due (at 17:00 local, tasks.min_notice after the case opens,
            # not overdue), to the manager; the exit interview (-1d, hr, no address configured) goes to the IT channel.
            assert sorted((m["channel"], m["text"].split(":")[0]) for m in sim.messages) == [
                ("C0ITOPS", "*Due"),
                (manager, "*Due"),
                (manager, "*Due"),
            ]
            assert all("owner: hr" in m["text"] for m in sim.messages if m["channel"] == "C0ITOPS")
            for step in ({"minutes": 20}, {"days": 14}, {"minutes": 20}, {"days": 2}, {"minutes": 20}):
                clock.advance(**step)
                server.intake.run_once()
        finally:
            stop(server)
        payloads = [json.loads(e["payload"]) for e in server.engine.store.events() if e["type"] == "task_reminder"]
        reminders = [(p["task"], p["kind"]) for p in payloads]
        assert (
            len(reminders) == len(set(reminders)) == len(sim.messages)
        )  # one message per task and kind, never repeated
        assert {task for task, kind in reminders if kind == "overdue"} == {
            "announce",
            "handover",
            "exit-interview",
            "final-pay",
            "keep-in-touch",
        }


def test_the_checklist_works_the_same_on_postgresql(company, tmp_path, pg_url, run):
    data = yaml.safe_load(company.config_path.read_text())
    company.config_path.write_text(yaml.safe_dump({**data, "store": pg_url}))
    cfg = ("--config", str(company.config_path))
    revoked = run(*cfg, "revoke", CONTRACTOR, "--yes", "--json")
    assert revoked.exit_code == 0, revoked.output
    case = json.loads(revoked.output)
    assert case["status"] == "awaiting_tasks" and case["checklist"]["blocking_open"] == 3
    for task in ("return-lap-1001", "return-phn-2002"):
        assert run(*cfg, "tasks", "done", case["case"], task, "--by", "Ines").exit_code == 0
    last = run(
        *cfg, "tasks", "skip", case["case"], "wipe-devices", "--by", "Ines", "--reason", "devices destroyed", "--json"
    )
    assert json.loads(last.output)["case_status"] == "complete"
    listed = json.loads(run(*cfg, "tasks", "--case", case["case"], "--json").output)
    assert sorted((t["task"], t["status"]) for t in listed if t["status"] != "open") == [
        ("return-lap-1001", "done"),
        ("return-phn-2002", "done"),
        ("wipe-devices", "skipped"),
    ]
    assert run(*cfg, "audit", "verify", "--strict").exit_code == 0


def test_status_exits_as_its_help_and_the_docs_say(company, run):
    """Exit 0 for a complete or cancelled case, 3 for one awaiting tasks (#21: the help said 3 unless complete)."""
    cfg = ("--config", str(company.config_path))
    helptext = " ".join(run("status", "--help").output.split())
    assert "Exits 3 if the case is neither complete nor cancelled" in helptext
    docs = " ".join(DOCS.read_text().split())
    assert "`offboard status CASE` exits 0 for a complete or cancelled case, 3 otherwise" in docs
    waiting = json.loads(run(*cfg, "revoke", CONTRACTOR, "--yes", "--json").output)["case"]
    done = json.loads(run(*cfg, "revoke", "user2@corp.example", "--yes", "--json").output)["case"]
    assert run(*cfg, "status", waiting).exit_code == 3  # awaiting_tasks
    assert run(*cfg, "status", done).exit_code == 0  # complete
    assert run(*cfg, "undo", waiting, "--yes").exit_code == 0
    assert json.loads(run(*cfg, "status", waiting, "--json").output)["status"] == "cancelled"
    assert run(*cfg, "status", waiting).exit_code == 0


def test_remind_without_notifiers_says_so(company, run):
    result = run("--config", str(company.config_path), "tasks", "remind")
    assert result.exit_code == 2
    assert "no notifiers are configured" in result.output
