"""Approval pages: a halted sweep posts a request to its approvers; two different approvers release it from
their links and it proceeds; a rejection opens nothing; the page records the same entry as the CLI."""

from __future__ import annotations

import pytest

from offboard.errors import ApprovalRequired
from offboard.inventory._approvals import cli_entry
from offboard.inventory._sweep import run_sweep

from .._smtp import mail_notifier, wait_for
from ..inventory._support import write_hr
from ..server._support import Clock, configure, new_secret, start, stop
from ._pages import HTML, LINKS_ENV, entries, links_secret, urls

APPROVERS = ["dana@corp.example", "eli@corp.example"]
LEAVERS = [f"user{i}" for i in range(12)]  # 60% of 20: a corrupted export


@pytest.fixture
def halted(make_company, tmp_path, monkeypatch, home, smtp):
    """A server whose sweep halted (12 cases over limits of 10), the request mailed to two approvers."""
    company = make_company(systems=3, people=20)
    hr = write_hr(tmp_path / "hr.json", company.people, LEAVERS)
    links_secret(monkeypatch)
    configure(
        company,
        new_secret(),
        monkeypatch,
        server={"links_secret": f"env:{LINKS_ENV}", "public_url": "http://offboard.test"},
        people=[{"type": "hr_export", "settings": {"path": str(hr)}}],
        limits={"max_cases": 10, "max_percent": 10},
        sweep={"approvals": 2, "approvers": APPROVERS},
        notifiers=mail_notifier(smtp, "approval"),
    )
    srv = start(company, "unused", Clock())
    result = run_sweep(srv.engine)
    assert result.halted and result.approval and srv.cases() == []
    wait_for(lambda: len(smtp.messages) >= 2)
    mailed = {tuple(to): urls(message.get_content()) for to, message in smtp.messages}
    srv.extra.update(company=company, result=result, links={to[0]: found[0] for to, found in mailed.items()})
    yield srv
    stop(srv)


def path(url: str) -> str:
    return url.removeprefix("http://offboard.test")


def test_the_request_shows_what_would_happen_and_two_different_approvers_release_it(halted):
    links = halted.extra["links"]
    assert sorted(links) == APPROVERS  # one personal link each
    first, second = path(links[APPROVERS[0]]), path(links[APPROVERS[1]])
    page = halted.client.get(first, headers=HTML)
    assert page.status_code == 200
    text = page.text
    assert "12 case(s) would open" in text and "limits.max_cases is 10" in text
    assert all(f"user{i}@corp.example" in text for i in range(12)) and "user12@corp.example" not in text
    per_system: dict[str, int] = {}
    for plan in halted.extra["result"].plans:
        for action in plan.actions:
            per_system[action.account.system] = per_system.get(action.account.system, 0) + 1
    assert sorted(per_system) == ["sys0", "sys1", "sys2"] and min(per_system.values()) >= 12
    # each system: 12 accounts touched (one per person), and every action planned on them
    assert all(f">{system}</td><td>12</td><td>{n}<" in text for system, n in per_system.items())
    assert "needs 2 different approver(s)" in text

    answer = halted.client.post(first, data={"approver": "Dana Reviewer", "decision": "approve"}, headers=HTML)
    assert answer.status_code == 200 and "2 different approvers are needed" in answer.text
    assert halted.cases() == []  # one approval is not enough
    again = halted.client.post(first, data={"approver": "Dana Again", "decision": "approve"}, headers=HTML)
    assert again.status_code == 409 and "already decided" in again.text
    same_name = halted.client.post(second, data={"approver": "dana reviewer", "decision": "approve"})
    assert same_name.status_code == 409 and "someone else" in same_name.json()["message"]
    assert halted.cases() == []

    done = halted.client.post(second, data={"approver": "Eli Auditor", "decision": "approve"}, headers=HTML)
    assert done.status_code == 200 and "Approved. 12 case(s) opened and run, 0 incomplete" in done.text
    opened = halted.cases()
    assert len(opened) == 12 and all("approved by Dana Reviewer, Eli Auditor" in c["reason"] for c in opened)
    approvals = entries(halted, "approval")
    assert [(a["approver"], a["decision"], a["via"]) for a in approvals] == [
        ("Dana Reviewer", "approved", "approval page"),
        ("Eli Auditor", "approved", "approval page"),
    ]
    assert [a["link"]["recipient"] for a in approvals] == APPROVERS
    result = halted.extra["result"]
    cli = cli_entry(approvals[0] | {}, result.reasons, "Dana Reviewer")  # what the CLI records for the same sweep
    assert set(cli) == set(approvals[0]) and approvals[0]["reasons"] == result.reasons
    late = halted.client.post(first, data={"approver": "Dana Reviewer", "decision": "reject"})
    assert late.status_code == 409 and len(halted.cases()) == 12


def test_a_rejected_sweep_opens_nothing(halted):
    first, second = (path(halted.extra["links"][a]) for a in APPROVERS)
    answer = halted.client.post(first, data={"approver": "Dana Reviewer", "decision": "reject"}, headers=HTML)
    assert answer.status_code == 200 and "Rejected" in answer.text
    assert halted.client.post(second, data={"approver": "Eli Auditor", "decision": "approve"}).status_code == 409
    assert halted.cases() == [] and all(
        halted.extra["company"].changes(s) == [] for s in halted.extra["company"].systems
    )
    assert [(a["approver"], a["decision"]) for a in entries(halted, "approval")] == [("Dana Reviewer", "rejected")]


def test_a_sweep_halting_again_for_the_same_people_does_not_ask_twice(halted, smtp):
    again = run_sweep(halted.engine)
    assert again.halted and again.approval == halted.extra["result"].approval
    assert len(smtp.messages) == 2 and len(entries(halted, "approval_requested")) == 1


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"decision": "approve"}, 400, "give your name"),
        ({"approver": "Dana", "decision": "maybe"}, 400, "approve or reject"),
        ({"approver": "Da\x00na", "decision": "approve"}, 400, "control"),
    ],
)
def test_a_bad_decision_is_refused_and_changes_nothing(halted, form, status, says):
    answer = halted.client.post(path(halted.extra["links"][APPROVERS[0]]), data=form)
    assert answer.status_code == status and says in answer.json()["message"]
    assert entries(halted, "approval") == [] and halted.cases() == []


def test_a_task_link_or_an_altered_or_expired_link_opens_no_approval(halted):
    url = path(halted.extra["links"][APPROVERS[0]])
    token = url.rsplit("/", 1)[1]
    links = halted.app.state.links
    as_task = links.token("task", halted.extra["result"].approval, APPROVERS[0], halted.clock())
    for bad, status in ((f"/approvals/a/{as_task}", 403), (f"/approvals/a/{token[:-3]}xyz", 403)):
        answer = halted.client.post(bad, data={"approver": "Mallory", "decision": "approve"})
        assert answer.status_code == status
    halted.clock.advance(days=15)
    expired = halted.client.post(url, data={"approver": "Dana", "decision": "approve"}, headers=HTML)
    assert expired.status_code == 410
    assert entries(halted, "approval") == [] and halted.cases() == []


def test_the_cli_needs_as_many_different_approvers_as_sweep_approvals_says(halted):
    with pytest.raises(ApprovalRequired, match="sweep.approvals is 2"):
        run_sweep(halted.engine, approve=True, approver=["Dana", "dana"])
    result = run_sweep(halted.engine, approve=True, approver=["Dana Reviewer", "Eli Auditor"])
    assert not result.halted and len(result.cases) == 12
    assert [(a["approver"], a["via"]) for a in entries(halted, "approval")] == [
        ("Dana Reviewer", "cli"),
        ("Eli Auditor", "cli"),
    ]
    page = halted.client.get(path(halted.extra["links"][APPROVERS[0]]), headers=HTML)
    assert "This request is closed" in page.text  # the CLI's sweep ran: the pending request no longer stands


def test_an_approved_sweep_that_cannot_run_says_so_and_how_to_run_it(halted, tmp_path):
    (tmp_path / "hr.json").write_text("{not json")  # the people source breaks after the halt
    first, second = (path(halted.extra["links"][a]) for a in APPROVERS)
    halted.client.post(first, data={"approver": "Dana Reviewer", "decision": "approve"})
    answer = halted.client.post(second, data={"approver": "Eli Auditor", "decision": "approve"}, headers=HTML)
    assert answer.status_code == 200 and "the sweep could not run" in answer.text
    assert (
        "offboard sweep --approve --approver &quot;Dana Reviewer&quot; --approver &quot;Eli Auditor&quot;"
        in answer.text
    )
    assert halted.cases() == []
