"""The task pages in a real browser (Debian's headless Chromium, driven by Playwright): the links come from the
reminders the sandbox Slack received, as an owner would click them.

A manager marks the handover done with a link; IT records the laptop returned worn (with a photo) and
the phone missing; the case's tasks (``offboard tasks --case``) and the audit log show each step with
who and when. Screenshots at phone (390 px) and desktop (1280 px) widths are kept in the test's
temporary directory and their paths printed.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from offboard.checklist._tasks import send_reminders
from offboard.web._app import create_app

from ..server._support import Clock, configure, new_secret, open_engine
from ..server.test_server_auditor_browser import browser  # noqa: F401  (the headless Chromium fixture)
from ._pages import LINKS_ENV, links_secret, urls
from .test_task_pages import png

PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}


@pytest.fixture
def live(tmp_path, monkeypatch, home):
    """The sandbox Slack, and offboard serving on a free port with links to itself; a leaver's case open."""
    import uvicorn

    from offboard.sandbox import Sandbox

    with Sandbox(people=40, seed=7, systems=("slack",)) as sb:
        sim = sb.sim("slack")
        sim.knobs.window_scale = 0.01  # do not wait out chat.postMessage's per-channel pacing
        config = sb.config()
        slack = config["connectors"]["slack"]["settings"]
        people = [p for p in sb.company.people if p.active and sim._index.get((p.email or "").lower())]
        leaver = next(p for p in people if p.type == "employee" and p.manager and sim._index.get(p.manager.lower()))
        desk = next(p for p in people if p.id not in (leaver.id, leaver.manager) and p.email != leaver.manager)
        (tmp_path / "equipment.csv").write_text(
            "person,asset_tag,kind,loaned_on\n"
            f"{leaver.id},LAP-4242,laptop,2024-02-01\n{leaver.id},PHN-4343,phone,2024-02-01\n"
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        company = SimpleNamespace(
            config_path=tmp_path / "offboard.yaml",
            write_config=lambda **_: company.config_path.write_text(yaml.safe_dump(company.extra)),
        )
        links_secret(monkeypatch)
        configure(
            company,
            new_secret(),
            monkeypatch,
            server={"links_secret": f"env:{LINKS_ENV}", "public_url": base},
            **config,
            tasks={"equipment": str(tmp_path / "equipment.csv"), "owners": {"it": [desk.email]}},
            notifiers={
                "slack": {
                    "type": "slack",
                    "events": ["task_due", "task_overdue", "equipment_missing"],
                    "settings": {"token": slack["token"], "channel": "C0ITOPS", "api_url": sb.url("slack") + "/api/"},
                }
            },
        )
        clock = Clock(datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
        engine = open_engine(company, clock)
        app = create_app(engine, clock=clock, process=False)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        try:
            assert engine.revoke(leaver.id).ok
            yield SimpleNamespace(
                sim=sim, engine=engine, clock=clock, leaver=leaver, desk=desk, base=base, config=company.config_path
            )
        finally:
            server.should_exit = True
            thread.join(timeout=20)
            sock.close()
            engine.close()


def link_in_slack(sim, user_email: str, title_part: str) -> str:
    """The personal link in the Slack message ``user_email`` received about a task titled with ``title_part``."""
    channel = sim._index[user_email.lower()]
    found = [
        urls(m["text"])
        for m in sim.messages
        if m["channel"] == channel and title_part.lower() in m["text"].split("\n")[0].lower()
    ]
    assert found and found[0], f"no reminder about {title_part!r} to {user_email}: {[m['text'] for m in sim.messages]}"
    return found[0][0]


def test_owners_close_their_tasks_from_the_slack_links_in_chromium(live, browser, tmp_path, run):  # noqa: F811
    send_reminders(live.engine)
    case = live.engine.store.find_cases(person_id=live.leaver.id, limit=1)[0]["id"]
    handover_url = link_in_slack(live.sim, live.leaver.manager, "handover")
    assert handover_url.startswith(live.base + "/tasks/t/")

    # the manager, on a phone
    phone = browser.new_context(viewport=PHONE, user_agent="Mozilla/5.0 (Linux; Android 14) phone")
    page = phone.new_page()
    response = page.goto(handover_url)
    assert response.status == 200 and response.headers["x-frame-options"] == "DENY"
    body = page.inner_text("body")
    assert live.leaver.id in body and "Your other open tasks in this case" in body
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # no sideways scrolling
    page.screenshot(path=str(tmp_path / "handover-phone.png"), full_page=True)
    page.get_by_label("Successor (who takes over)").fill("Ana Successor")
    page.get_by_label("Link to the handover document").fill("https://docs.corp.example/handover/1")
    page.get_by_role("button", name="Mark the handover done").click()
    page.wait_for_load_state()
    assert "is done, recorded as " + live.leaver.manager in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "handover-done-phone.png"), full_page=True)
    again = page.goto(handover_url)
    assert again.status == 200 and "This task is done" in page.inner_text("body")
    phone.close()

    # IT, at a desk: the laptop came back worn (with a photo), the phone is missing
    photo = tmp_path / "lid.png"
    photo.write_bytes(png(8, 6))
    desk = browser.new_context(viewport=DESKTOP)
    page = desk.new_page()
    page.goto(link_in_slack(live.sim, live.desk.email, "LAP-4242"))
    page.screenshot(path=str(tmp_path / "return-desktop.png"), full_page=True)
    page.get_by_label("The asset tag on the item reads LAP-4242").check()
    page.get_by_label("worn").check()
    page.get_by_label("Note").fill("scratches on the lid")
    page.get_by_label("Photo (optional, JPEG, PNG or WebP)").set_input_files(str(photo))
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Record the return").click()
    page.wait_for_load_state()
    assert "is done" in page.inner_text("body")
    page.goto(link_in_slack(live.sim, live.desk.email, "PHN-4343"))
    page.get_by_label("missing").check()
    page.get_by_role("button", name="Record the return").click()
    page.wait_for_load_state()
    assert "is missing. The task stays open" in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "missing-desktop.png"), full_page=True)
    desk.close()

    # the missing phone reached IT's channel and the manager
    missing = [m for m in live.sim.messages if m["text"].startswith("*Missing: phone PHN-4343")]
    assert sorted(m["channel"] for m in missing) == sorted(["C0ITOPS", live.sim._index[live.leaver.manager.lower()]])

    # the case's tasks and the audit log: each step, who and when
    shown = run("--config", str(live.config), "tasks", "--case", case, "--json")
    assert shown.exit_code == 0, shown.output
    tasks = {t["task"]: t for t in json.loads(shown.output)}
    assert (tasks["handover"]["status"], tasks["handover"]["closed_by"]) == ("done", live.leaver.manager)
    assert (tasks["return-lap-4242"]["status"], tasks["return-lap-4242"]["closed_by"]) == ("done", live.desk.email)
    assert tasks["return-phn-4343"]["status"] == "open"
    assert all(tasks[t]["closed_at"] for t in ("handover", "return-lap-4242"))
    log = [
        json.loads(line) for line in (Path(live.engine.data_dir) / "audit" / "entries.jsonl").read_bytes().splitlines()
    ]
    steps = [
        (e["type"], e["task"], e.get("by") or e.get("recipient") or e["link"]["recipient"])
        for e in log
        if e.get("case") == case and e["type"] in ("task_link_opened", "task", "equipment_return")
    ]
    assert steps == [
        ("task_link_opened", "handover", live.leaver.manager),
        ("task", "handover", live.leaver.manager),
        ("task_link_opened", "return-lap-4242", live.desk.email),
        ("task", "return-lap-4242", live.desk.email),
        ("task_link_opened", "return-phn-4343", live.desk.email),
        ("equipment_return", "return-phn-4343", live.desk.email),
    ]
    laptop = next(e for e in log if e["type"] == "task" and e["task"] == "return-lap-4242")
    assert laptop["equipment"]["condition"] == "worn" and laptop["equipment"]["photo"]["sha256"] == (
        __import__("hashlib").sha256(photo.read_bytes()).hexdigest()
    )
    opened = next(e for e in log if e["type"] == "task_link_opened")
    assert "Android" in opened["user_agent"] and re.match(r"\d{4}-\d\d-\d\dT", opened["opened_at"])

    for name in ("handover-phone.png", "handover-done-phone.png", "return-desktop.png", "missing-desktop.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, name
    print(f"screenshots: {sorted(str(p) for p in tmp_path.glob('*.png'))}")
