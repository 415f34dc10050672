"""Task pages: a personal link closes exactly its task, as the CLI does, and nothing else.

Every refusal (altered, expired, reused, made for another purpose, bad form) is a 4xx and changes
nothing: the task row and the audit log are compared before and after.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest

from offboard.checklist._links import LinkError, Links, links_for
from offboard.config._secrets import Secret
from offboard.errors import ConfigError

from ..server._support import stop
from ._pages import HTML, IT, LINKS_ENV, MANAGER, OPENED, entries, link, serve, task_row

LAPTOP, PHONE = "return-lap-1001", "return-phn-2002"


def png(width: int = 4, height: int = 3) -> bytes:
    """A real (tiny) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x80\x60\x40" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture
def srv(make_company, tmp_path, monkeypatch, home):
    server = serve(make_company, tmp_path, monkeypatch)
    yield server
    stop(server)


def unchanged(srv, task: str):
    """A snapshot of what a refused request must not change: the task row and the audit log."""
    return task_row(srv, task), len(entries(srv))


def test_the_handover_page_shows_the_task_in_the_owners_zone_and_closes_it_as_the_cli_does(srv):
    path = link(srv, "handover", MANAGER)
    page = srv.client.get(path, headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    title = task_row(srv, "handover")["title"]
    assert "Kiri Contractor (user1@corp.example)" in text and title in text
    assert "(Europe/Berlin), your time; " in text and "(Pacific/Auckland) where the person leaving is" in text
    assert "this link is for mgr@corp.example" in text
    assert "Your other open tasks in this case" in text and "Hold the exit interview" in text  # the manager's
    assert "Return laptop" not in text  # IT's, not the manager's
    for header in ("content-security-policy", "x-frame-options", "referrer-policy", "x-content-type-options"):
        assert header in page.headers
    assert "no-store" in page.headers["cache-control"] and "<script" not in text
    opened = entries(srv, "task_link_opened")
    assert [(e["task"], e["recipient"]) for e in opened] == [("handover", MANAGER)]

    answer = srv.client.post(
        path,
        data={
            "successor": "Ana Successor",
            "link": "https://docs.corp.example/handover/kiri",
            "note": "all in one doc",
        },
        headers=HTML,
    )
    assert answer.status_code == 200, answer.text
    assert f"&quot;{title}&quot; is done, recorded as mgr@corp.example" in answer.text
    row = task_row(srv, "handover")
    assert (row["status"], row["closed_by"], row["note"]) == ("done", MANAGER, "all in one doc")
    (entry,) = [e for e in entries(srv, "task") if e["task"] == "handover"]
    assert entry["by"] == MANAGER and entry["status"] == "done" and entry["via"] == "task page"
    assert entry["handover"] == {
        "successor": "Ana Successor",
        "link": "https://docs.corp.example/handover/kiri",
        "file": None,
    }
    assert entry["link"]["recipient"] == MANAGER and entry["link"]["client"] == "testclient"
    # the CLI's entry has the same core fields: the page closes the task exactly as `offboard tasks done` does
    assert {"case", "person", "task", "title", "owner", "blocking", "due_at", "status", "by", "note", "at"} <= set(
        entry
    )

    # the same link again: 409, nothing changed
    before = unchanged(srv, "handover")
    again = srv.client.post(path, data={"successor": "Someone Else", "link": "https://x.example/"}, headers=HTML)
    assert again.status_code == 409 and "already done" in again.text
    assert unchanged(srv, "handover") == before
    assert "This task is done" in srv.client.get(path, headers=HTML).text
    secret = os.environ[LINKS_ENV]  # the links key is in no page, entry or log line
    audit = (Path(srv.engine.data_dir) / "audit" / "entries.jsonl").read_text()
    assert secret not in audit and secret not in page.text and secret not in answer.text
    assert secret not in repr(srv.app.state.links)


def test_equipment_returns_record_condition_and_photo_and_a_missing_item_keeps_its_task_open(srv, smtp):
    image = png()
    laptop = srv.client.post(
        link(srv, LAPTOP, IT),
        data={"asset_tag_confirmed": "yes", "condition": "worn", "note": "scratched lid"},
        files={"photo": ("lid.png", image, "image/png")},
    )
    assert laptop.status_code == 200, laptop.text
    (entry,) = [e for e in entries(srv, "task") if e["task"] == LAPTOP]
    photo = entry["equipment"]["photo"]
    assert entry["equipment"]["condition"] == "worn" and entry["equipment"]["asset_tag"] == "LAP-1001"
    assert photo["sha256"] == hashlib.sha256(image).hexdigest() and photo["bytes"] == len(image)
    stored = Path(srv.engine.data_dir) / "cases" / srv.extra["case"] / "returns" / Path(photo["file"]).name
    assert stored.read_bytes() == image and entry["by"] == IT

    phone = srv.client.post(link(srv, PHONE, IT), data={"condition": "missing", "note": "not handed in"})
    assert phone.status_code == 200 and "stays open" in phone.text
    assert task_row(srv, PHONE)["status"] == "open"
    (missing,) = entries(srv, "equipment_return")
    assert missing["equipment"]["condition"] == "missing" and missing["link"]["recipient"] == IT


def test_a_missing_item_tells_it_and_the_manager(make_company, tmp_path, monkeypatch, home, smtp):
    from .._smtp import mail_notifier, wait_for

    srv = serve(make_company, tmp_path, monkeypatch, notifiers=mail_notifier(smtp, "equipment_missing"))
    try:
        answer = srv.client.post(link(srv, PHONE, IT), data={"condition": "missing"})
        assert answer.status_code == 200
        wait_for(lambda: len(smtp.messages) >= 2)
        assert sorted(tuple(to) for to, _ in smtp.messages) == [("it@corp.example",), (MANAGER,)]
        assert all("Missing: phone PHN-2002" in m["Subject"] for _, m in smtp.messages)
    finally:
        stop(srv)


def test_the_exit_interview_records_that_it_was_held_and_when_not_what_was_said(srv):
    path = link(srv, "exit-interview", MANAGER)
    future = (OPENED + timedelta(days=3)).date().isoformat()
    before = unchanged(srv, "exit-interview")
    assert srv.client.post(path, data={"held": "yes", "date": future}).status_code == 400
    assert srv.client.post(path, data={"held": "no"}).status_code == 400  # no reason given
    assert unchanged(srv, "exit-interview") == before
    answer = srv.client.post(path, data={"held": "yes", "date": "2026-10-30", "note": "notes kept by HR"})
    assert answer.status_code == 200
    (entry,) = [e for e in entries(srv, "task") if e["task"] == "exit-interview"]
    assert entry["exit_interview"] == {"held": True, "date": "2026-10-30"} and entry["status"] == "done"


def test_a_plain_task_is_done_or_skipped_with_a_reason(srv):
    path = link(srv, "announce-end", MANAGER)
    refused = srv.client.post(path, data={"action": "skip"}, headers=HTML)
    assert refused.status_code == 400 and "needs a reason" in refused.text
    assert srv.client.post(path, data={"action": "skip", "note": "announced by the client"}).status_code == 200
    row = task_row(srv, "announce-end")
    assert (row["status"], row["note"], row["closed_by"]) == ("skipped", "announced by the client", MANAGER)


@pytest.mark.parametrize(
    ("mutate", "status", "says"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), 403, "altered"),
        (lambda t: "x" + t, 403, "altered"),
        (lambda t: t.replace(".", ""), 403, "not one offboard made"),
        (lambda t: "a" * 3000, 403, "not one offboard made"),
        (lambda t: "%00.%ff", 403, "not"),
    ],
)
def test_an_altered_link_is_refused_and_changes_nothing(srv, mutate, status, says):
    path = link(srv, "handover", MANAGER)
    token = path.rsplit("/", 1)[1]
    before = unchanged(srv, "handover")
    bad = f"/tasks/t/{mutate(token)}"
    for response in (
        srv.client.get(bad, headers=HTML),
        srv.client.post(bad, data={"successor": "Mallory", "link": "https://evil.example/"}, headers=HTML),
    ):
        assert response.status_code == status and says in response.text
    json_answer = srv.client.post(bad, data={"successor": "Mallory"})
    assert json_answer.status_code == status and set(json_answer.json()) == {"error", "message"}
    assert unchanged(srv, "handover") == before


def test_an_expired_link_or_one_made_for_an_approval_opens_nothing(srv):
    path = link(srv, "handover", MANAGER)
    approval_token = link(srv, f"{srv.extra['case']}/handover", MANAGER, purpose="approval").rsplit("/", 1)[1]
    before = unchanged(srv, "handover")
    wrong = srv.client.post(f"/tasks/t/{approval_token}", data={"successor": "A", "link": "https://a.example/"})
    assert wrong.status_code == 403 and "made for something else" in wrong.json()["message"]
    srv.clock.advance(days=15)  # server.link_days defaults to 14
    expired = srv.client.post(path, data={"successor": "A", "link": "https://a.example/"}, headers=HTML)
    assert expired.status_code == 410 and "expired" in expired.text
    assert unchanged(srv, "handover") == before


@pytest.mark.parametrize(
    ("task", "form", "files", "says"),
    [
        ("handover", {"link": "https://a.example/"}, None, "successor"),
        ("handover", {"successor": "Ana"}, None, "link: give a link"),
        ("handover", {"successor": "Ana", "link": "javascript:alert(1)"}, None, "https://"),
        ("handover", {"successor": "A\u202eB", "link": "https://a.example/"}, None, "direction-changing"),
        ("handover", {"successor": "x" * 201, "link": "https://a.example/"}, None, "at most 200"),
        (LAPTOP, {"condition": "shiny", "asset_tag_confirmed": "yes"}, None, "not one of"),
        (LAPTOP, {"condition": "good"}, None, "asset tag"),
        (
            LAPTOP,
            {"condition": "good", "asset_tag_confirmed": "yes"},
            {"photo": ("a.png", b"MZ\x90\x00", "image/png")},
            "not a JPEG",
        ),
        ("exit-interview", {"held": "maybe"}, None, "yes or no"),
        ("exit-interview", {"held": "yes", "date": "30/10/2026"}, None, "YYYY-MM-DD"),
    ],
)
def test_a_bad_form_names_the_field_and_changes_nothing(srv, task, form, files, says):
    owner = IT if task.startswith("return-") else MANAGER
    before = unchanged(srv, task)
    answer = srv.client.post(link(srv, task, owner), data=form, files=files)
    assert answer.status_code in (400, 415) and says in answer.json()["message"], answer.text
    assert unchanged(srv, task) == before
    assert not (Path(srv.engine.data_dir) / "cases" / srv.extra["case"] / "returns").exists()


def test_a_form_that_is_not_a_form_or_too_large_is_refused(srv):
    path = link(srv, LAPTOP, IT)
    before = unchanged(srv, LAPTOP)
    assert srv.client.post(path, content=b"{}", headers={"content-type": "application/json"}).status_code == 415
    huge = srv.client.post(
        path, content=b"x", headers={"content-type": "multipart/form-data; boundary=z", "content-length": "99999999"}
    )
    assert huge.status_code == 413
    broken = srv.client.post(
        path, content=b"--z\r\nnonsense", headers={"content-type": "multipart/form-data; boundary=z"}
    )
    assert broken.status_code == 400
    assert unchanged(srv, LAPTOP) == before


def test_links_are_off_without_a_links_secret_and_a_weak_one_is_refused(make_company, monkeypatch, tmp_path, home):
    from ..server._support import Clock, configure, new_secret, start

    company = make_company(systems=1, people=2)
    configure(company, new_secret(), monkeypatch)
    srv = start(company, "unused", Clock())
    try:
        answer = srv.client.get("/tasks/t/anything", headers=HTML)
        assert answer.status_code == 404 and "server.links_secret" in answer.text
    finally:
        stop(srv)
    monkeypatch.setenv("SHORT_LINKS_SECRET", "0123456789abcdef")
    config = type("C", (), {"server": {"links_secret": "env:SHORT_LINKS_SECRET"}, "source": None})()
    with pytest.raises(ConfigError, match="too short") as caught:
        links_for(config)
    assert "0123456789abcdef" not in str(caught.value)


def test_a_link_key_never_shows_and_a_token_never_opens_with_another_key():
    now = OPENED
    secret = Secret("k" * 20 + "0123456789abcdefghij", "env:TEST")
    links = Links(secret, "https://offboard.corp.example")
    assert secret.reveal() not in repr(links) and "Secret" not in repr(links)
    token = links.token("task", "case-1/handover", MANAGER, now)
    assert links.check(token, "task", now).recipient == MANAGER
    other = Links(Secret("z" * 40, "env:OTHER"))
    with pytest.raises(LinkError, match="altered"):
        other.check(token, "task", now)
    with pytest.raises(LinkError, match="something else"):
        links.check(token, "approval", now)


def test_the_auditors_report_lists_each_persons_equipment_returned_missing_and_damaged(srv):
    from offboard.audit._report import build_report
    from offboard.audit._report_equipment import equipment_rows
    from offboard.audit._report_html import render_report

    image = png()
    srv.client.post(
        link(srv, LAPTOP, IT),
        data={"asset_tag_confirmed": "yes", "condition": "damaged", "note": "cracked screen"},
        files={"photo": ("screen.png", image, "image/png")},
    )
    srv.client.post(link(srv, PHONE, IT), data={"condition": "missing"})
    srv.engine.record.seal()
    srv.engine.wait_sealed()
    report = build_report(Path(srv.engine.data_dir) / "audit", now=srv.clock())
    rows = {r["task"]: r for r in equipment_rows(report)}
    assert (rows[LAPTOP]["condition"], rows[LAPTOP]["by"], rows[LAPTOP]["status"]) == ("damaged", IT, "done")
    assert (
        rows[LAPTOP]["photo_sha256"] == hashlib.sha256(image).hexdigest() and rows[LAPTOP]["item"] == "laptop LAP-1001"
    )
    assert (rows[PHONE]["condition"], rows[PHONE]["status"]) == ("missing", "open")
    page = render_report(report)
    assert "Equipment returned, missing and damaged" in page
    assert "2 loaned item(s): 1 returned (1 damaged), 1 missing, 0 with no condition recorded." in page
    assert "<strong>missing</strong>" in page and "cracked screen" in page


def test_the_cli_prints_a_link_that_opens_the_task_and_says_what_is_wrong_otherwise(srv, run):
    config = str(srv.company.config_path)
    printed = run("--config", config, "tasks", "link", srv.extra["case"], "handover", "--for", MANAGER)
    assert printed.exit_code == 0, printed.output
    url = printed.output.strip()
    assert url.startswith("https://offboard.corp.example/tasks/t/")
    assert srv.client.get(url.removeprefix("https://offboard.corp.example"), headers=HTML).status_code == 200
    for args, says in (
        (["nosuchcase", "handover", "--for", MANAGER], "no case matches"),
        ([srv.extra["case"], "nosuchtask", "--for", MANAGER], "has no task 'nosuchtask'"),
        ([srv.extra["case"], "handover", "--for", " "], "--for"),
    ):
        result = run("--config", config, "tasks", "link", *args)
        assert result.exit_code == 2 and says in result.output


def test_two_clicks_at_once_close_a_task_once(srv):
    from concurrent.futures import ThreadPoolExecutor

    path = link(srv, "announce-end", MANAGER)
    with ThreadPoolExecutor(4) as pool:
        codes = sorted(pool.map(lambda _: srv.client.post(path, data={"action": "done"}).status_code, range(4)))
    assert codes == [200, 409, 409, 409]
    assert len([e for e in entries(srv, "task") if e["task"] == "announce-end"]) == 1
