"""The auditor pages in a real browser: Debian's headless Chromium driven by Playwright (no browser download).

Screenshots of the report and of a person page are kept in the test's temporary directory
(``report.png``, ``person.png``, and ``report.pdf`` as printed), as test artifacts. The report of
45 people (charts, the people table, a person page at 1280 px, and the whole report printed to an
A4 PDF) is kept in ``tests/server/screenshots/``, next to this file, to look at after a run.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from offboard.audit import AuditLog, load_trust, verify_evidence
from offboard.web._app import create_app

from ._auditor import bearer, configure_auditor, open_engine, run_cases
from ._support import Clock

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture
def browser():
    """Headless Debian Chromium; a missing browser fails the test (CI installs it), it never skips."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is not installed ({CHROMIUM}): apt-get install chromium (scripts/test does)")
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield instance
        instance.close()


@contextmanager
def serve(app):
    """The app served by uvicorn on a free local port; yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def live(make_company, monkeypatch, home):
    """The app served by uvicorn on a free local port, over complete, incomplete and late cases."""
    company, token = configure_auditor(make_company, monkeypatch)
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    now = clock()
    # a case from before the engine ran, terminated three days ago and revoked 30 hours later: late
    with AuditLog.open(home / "audit", "test.example/offboard/audit/v1") as log:
        plan = [
            {"system": s, "account": {"id": f"late-{s}", "name": f"late@{s}.example"}, "kind": "disable_account"}
            for s in ("entra", "github")
        ]
        termination, done = now - timedelta(days=3), now - timedelta(days=3) + timedelta(hours=30)
        log.append(
            "case_opened",
            {
                "case": "case-late",
                "person": {"id": "late@corp.example", "employee_id": "E77", "timezone": "America/New_York"},
                "trigger": "webhook",
                "policy": "default",
                "reason": "resigned",
                "termination_at": iso(termination),
                "plan": plan,
            },
        )
        for item in plan:
            log.append(
                "action",
                {
                    "case": "case-late",
                    "person": {"id": "late@corp.example"},
                    **item,
                    "requested_at": iso(done - timedelta(seconds=2)),
                    "responded_at": iso(done),
                    "result": "verified",
                    "reference": f"req-{item['system']}-77",
                    "changed": True,
                    "attempts": 1,
                    "error": None,
                    "verification": {"ok": True, "observed": {"accountEnabled": False}, "detail": ""},
                },
            )
        log.append(
            "case_closed",
            {
                "case": "case-late",
                "person": {"id": "late@corp.example"},
                "status": "complete",
                "counts": {"verified": 2},
                "termination_at": iso(termination),
                "last_verified_at": iso(done),
                "elapsed_ms": 30 * 3600 * 1000,
            },
        )
        log.checkpoint()
    engine = open_engine(company, clock)
    run_cases(engine, company)
    app = create_app(engine, clock=clock, process=False)
    with serve(app) as base:
        yield base, token, engine, now
    engine.close()


def test_the_auditor_pages_in_headless_chromium(live, browser, tmp_path):
    base, token, engine, now = live
    anonymous = browser.new_page()
    response = anonymous.goto(f"{base}/audit/")  # without the token: refused, nothing shown
    assert (
        response.status == 401
        and "Bearer" in anonymous.inner_text("body")
        and "Cases" not in anonymous.inner_text("body")
    )
    anonymous.close()
    # the token on every request of the context (as a proxy in front of the pages would add it), downloads included
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True, extra_http_headers=bearer(token)
    )
    page = context.new_page()

    start, end = (now - timedelta(days=7)).date(), now.date()
    response = page.goto(f"{base}/audit/?from={start}&to={end}&sla=24h")
    assert response.status == 200
    text = page.inner_text("body")
    assert "Termination control evidence" in text and f"{start} to {end}" in text
    summary = {
        row.inner_text().split("\t")[0]: row.inner_text().split("\t")[-1]
        for row in page.locator("table.summary tr").all()
    }
    assert summary["People offboarded (with a case in the period)"] == "4"
    assert summary["Cases"] == "4" and summary["Complete (every account revoked and read back)"] == "3"
    assert summary["Incomplete"] == "1" and summary["Cases over the 24 h deadline"] == "1"
    assert summary["Worst time to revoke"].startswith("30 h (case case-late")
    assert "OVER DEADLINE" in text and "late@corp.example" in text and "user2@corp.example" in text
    # UTC and the person's zone (New York) for the late case
    local = (now - timedelta(days=3)).astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert f"{local:%Y-%m-%d %H:%M:%S} {local.tzname()} (America/New_York)" in text
    assert page.locator("table caption").count() >= 4 and page.locator('th[scope="col"]').count() > 10
    assert token not in page.content()
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    # printed: the period form and the contents are hidden, the tables stay
    page.emulate_media(media="print")
    assert page.locator("form.period").is_hidden() and page.locator("nav").is_hidden()
    assert page.locator("table.summary").is_visible()
    page.pdf(path=str(tmp_path / "report.pdf"))
    page.emulate_media(media="screen")

    # choose another period with the form (a GET; the page stays read-only)
    page.fill('input[name="from"]', str(end))
    page.fill('input[name="to"]', str(end))
    page.click('button[type="submit"]')
    page.wait_for_url(f"**/audit/?from={end}&to={end}&sla=24h")
    assert "late@corp.example" not in page.inner_text("#people")  # terminated three days ago
    assert page.locator("table.summary tr", has_text="Cases").first.inner_text().endswith("3")

    # follow the incomplete person to their page
    page.click('#people a:text-is("user2@corp.example")')
    page.wait_for_url("**/audit/people/user2%40corp.example?sla=24h")
    person = page.inner_text("body")
    assert "user2@corp.example" in person and "incomplete" in person and "credentials rejected" in person
    assert "Log entries" in person and "case_opened" in person and "case_closed" in person
    assert "Download the evidence bundle" in person
    page.screenshot(path=str(tmp_path / "person.png"), full_page=True)
    with page.expect_download() as download:
        page.click("text=Download the evidence bundle")
    bundle = tmp_path / "evidence.zip"
    assert download.value.suggested_filename == "evidence-user2_corp.example.zip"
    download.value.save_as(bundle)
    checked = verify_evidence(bundle, load_trust(engine.data_dir / "audit" / "trusted-keys.txt"))
    assert checked.problems == [] and checked.person == "user2@corp.example"

    for name in ("report.png", "person.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, name
    assert (tmp_path / "report.pdf").read_bytes()[:5] == b"%PDF-"
    print(f"screenshots: {tmp_path / 'report.png'} {tmp_path / 'person.png'}")


# -- a period of many people: the charts and a layout that fits ------------------------------

SHOTS = Path(__file__).parent / "screenshots"  # kept after the run (git ignores them)
ORIGIN = "test.example/offboard/audit/v1"
FIT = """() => {
  const doc = document.documentElement;
  const cut = [];
  if (doc.scrollWidth > doc.clientWidth) cut.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
  for (const el of document.querySelectorAll('table, svg, figure, pre')) {
    const box = el.getBoundingClientRect(), room = el.parentElement.getBoundingClientRect();
    if (el.offsetParent === null) continue;  // hidden (in print: the form, the contents)
    if (el.scrollWidth > el.clientWidth + 1 || box.right > room.right + 1 || box.right > doc.clientWidth + 1)
      cut.push(`${el.tagName} ${(el.querySelector('caption, title') || {}).textContent} ends at ${box.right}`);
  }
  return cut;
}"""


@pytest.fixture
def crowd(make_company, monkeypatch, home):
    """The pages over 45 people in the last six weeks across five systems: late, incomplete, open and undone cases."""
    from benchmarks.bench_report import write_period

    company, token = configure_auditor(make_company, monkeypatch)
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    write_period(home / "audit", 45, end=clock(), origin=ORIGIN)
    engine = open_engine(company, clock)
    with serve(create_app(engine, clock=clock, process=False)) as base:
        yield base, token, clock()
    engine.close()


def test_a_report_of_45_people_fits_the_screen_and_the_page_with_every_chart(crowd, browser):
    base, token, now = crowd
    SHOTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, extra_http_headers=bearer(token))
    page = context.new_page()
    start, end = (now - timedelta(days=43)).date(), now.date()
    assert page.goto(f"{base}/audit/?from={start}&to={end}&sla=24h").status == 200
    assert page.locator("table.people tbody tr").count() == 45
    for kind in ("distribution", "systems", "weeks"):
        chart = page.locator(f'figure[data-figure="{kind}"] svg')
        assert chart.count() == 1 and chart.is_visible(), kind
        box = chart.bounding_box()
        assert box["width"] > 400 and box["height"] > 100 and box["x"] + box["width"] <= 1280, (kind, box)
        assert page.locator(f'figure[data-figure="{kind}"] table.chart-numbers').is_visible()
    assert page.locator('figure[data-figure="timeline"] svg').count() == 45
    assert page.locator('figure[data-figure="systems"] g.system').count() == 5
    assert page.locator('figure[data-figure="distribution"] g.deadline').count() == 1
    assert (
        page.locator('figure[data-figure="distribution"] g.median, figure[data-figure="distribution"] g.worst').count()
        == 2
    )
    # nothing cut off at 1280 px: the page, every table (the people table's Deadline column too), every chart
    assert page.evaluate(FIT) == []
    deadline = page.locator("table.people thead th", has_text="Deadline").bounding_box()
    assert deadline["x"] + deadline["width"] <= 1280
    page.locator("#charts").screenshot(path=str(SHOTS / "report-charts-1280.png"))
    page.locator("table.people").screenshot(path=str(SHOTS / "report-people-1280.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SHOTS / "report-top-1280.png"))

    # in print, on A4 (210 mm less 2 x 10 mm margins = 718 CSS px): nothing cut off, each person kept together
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 718, "height": 1000})
    assert page.evaluate(FIT) == []
    assert page.locator("form.period").is_hidden() and page.locator("nav").is_hidden()
    kept = page.evaluate("getComputedStyle(document.querySelector('section.person')).breakInside")
    assert kept == "avoid-page"
    page.pdf(path=str(SHOTS / "report.pdf"), format="A4", print_background=True)
    pdf = (SHOTS / "report.pdf").read_bytes()
    assert (
        pdf[:5] == b"%PDF-" and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") + pdf.count(b"/Type/Page") > 10
    )
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1280, "height": 900})

    # a late person's page: the same timeline, fitting too
    page.click('table.people a:text-is("person0004@corp.example")')
    page.wait_for_url("**/audit/people/person0004%40corp.example?sla=24h")
    lanes = page.locator('figure[data-figure="timeline"] g.lane')
    assert lanes.count() == 7  # five systems and two checklist tasks
    assert page.locator('figure[data-figure="timeline"] g.mark[data-kind="due"]').count() == 2
    assert "OVER DEADLINE" in page.inner_text("body") and page.evaluate(FIT) == []
    page.screenshot(path=str(SHOTS / "person-1280.png"), full_page=True)
    for name in ("report-charts-1280.png", "report-people-1280.png", "report-top-1280.png", "person-1280.png"):
        data = (SHOTS / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, name
    context.close()
