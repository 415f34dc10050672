"""Approving a halted sweep in a real browser (Debian's headless Chromium): two approvers open the links their
emails carried, read what would happen, and approve; the sweep proceeds. Screenshots at phone and desktop
widths are kept in the test's temporary directory."""

from __future__ import annotations

from offboard.inventory._sweep import run_sweep
from offboard.web._app import create_app

from .._smtp import mail_notifier, wait_for
from ..inventory._support import write_hr
from ..server._support import Clock, configure, new_secret, open_engine
from ..server.test_server_auditor_browser import browser  # noqa: F401  (the headless Chromium fixture)
from ._pages import LINKS_ENV, bound_socket, links_secret, live_server, urls
from .test_task_pages_browser import DESKTOP, PHONE

APPROVERS = ["dana@corp.example", "eli@corp.example"]


def test_two_approvers_release_a_halted_sweep_from_their_email_links_in_chromium(
    make_company,
    tmp_path,
    monkeypatch,
    home,
    smtp,
    browser,  # noqa: F811
):
    company = make_company(systems=3, people=20)
    hr = write_hr(tmp_path / "hr.json", company.people, [f"user{i}" for i in range(12)])
    sock, base = bound_socket()
    links_secret(monkeypatch)
    configure(
        company,
        new_secret(),
        monkeypatch,
        server={"links_secret": f"env:{LINKS_ENV}", "public_url": base},
        people=[{"type": "hr_export", "settings": {"path": str(hr)}}],
        limits={"max_cases": 10, "max_percent": 10},
        sweep={"approvals": 2, "approvers": APPROVERS},
        notifiers=mail_notifier(smtp, "approval"),
    )
    engine = open_engine(company, Clock())
    try:
        with live_server(sock, create_app(engine, clock=Clock(), process=False)):
            assert run_sweep(engine).halted
            wait_for(lambda: len(smtp.messages) >= 2)
            mailed = {to[0]: urls(message.get_content())[0] for to, message in smtp.messages}
            for n, (approver, name, viewport) in enumerate(
                [(APPROVERS[0], "Dana Reviewer", PHONE), (APPROVERS[1], "Eli Auditor", DESKTOP)]
            ):
                context = browser.new_context(viewport=viewport)
                page = context.new_page()
                assert page.goto(mailed[approver]).status == 200
                text = page.inner_text("body")
                assert "12 case(s) would open" in text and "limits.max_cases is 10" in text
                assert page.locator("ul.people li").count() == 12
                assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
                width = "phone" if viewport is PHONE else "desktop"
                page.screenshot(path=str(tmp_path / f"approval-{width}.png"), full_page=True)
                page.get_by_label("Your name").fill(name)
                page.get_by_role("button", name="Approve").click()
                page.wait_for_load_state()
                after = page.inner_text("body")
                if n == 0:
                    assert "2 different approvers are needed" in after and engine.store.find_cases(limit=100) == []
                else:
                    assert "Approved. 12 case(s) opened and run" in after
                    page.screenshot(path=str(tmp_path / "approved-desktop.png"), full_page=True)
                context.close()
        opened = engine.store.find_cases(limit=100)
        assert len(opened) == 12 and all("approved by Dana Reviewer, Eli Auditor" in c["reason"] for c in opened)
    finally:
        engine.close()
    for name in ("approval-phone.png", "approval-desktop.png", "approved-desktop.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshots: {sorted(str(p) for p in tmp_path.glob('*.png'))}")
