"""Approval pages in ``offboard serve``: an approver releases (or rejects) a halted sweep from a personal link.

``GET /approvals/a/{token}`` shows exactly what would happen: the people, the systems and the
number of actions in each, and why the sweep halted, with the decisions taken so far. ``POST``
with the approver's name and ``decision=approve|reject`` records the same ``approval`` entry as
``offboard sweep --approve --approver NAME``; see :mod:`offboard.inventory._approvals` for when
the sweep then runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..checklist._links import Grant, LinkError
from ..inventory._approvals import APPROVED, PENDING, REJECTED, DecisionError, decide, load
from ._limits import client_of, rate_limited
from ._tasks import links_of
from ._tasks_forms import PageRefused, html, read_form, refused, text_field
from ._tasks_html import page

__all__ = ["router"]

router = APIRouter(dependencies=[Depends(rate_limited)], include_in_schema=False)


def _grant(request: Request, token: str) -> Grant:
    try:
        return links_of(request).check(token, "approval", request.app.state.services.clock())
    except LinkError as exc:
        raise PageRefused(410 if exc.code == "expired" else 403, exc.code, str(exc)) from None


def _load(engine: Any, grant: Grant) -> dict[str, Any]:
    try:
        return load(engine, grant.subject)
    except DecisionError as exc:
        raise PageRefused(exc.status, "not_found", str(exc)) from None


def _rows(items: Sequence[Sequence[str]]) -> str:
    return "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in items)


def render(request_: dict[str, Any], recipient: str, message: str = "") -> str:
    """The approval page: what would happen, why it halted, who decided, and the form while it is pending."""
    parts = []
    if message:
        parts.append(f'<p class="status" role="status">{escape(message)}</p>')
    parts.append(
        f"<p>A sweep halted before any action on {escape(request_['created_at'])}. "
        f"It needs {request_['needed']} different approver(s). This link is for {escape(recipient)}.</p>"
    )
    parts.append("<h2>Why it halted</h2><ul>" + "".join(f"<li>{escape(r)}</li>" for r in request_["reasons"]) + "</ul>")
    systems = [(s, str(n["accounts"]), str(n["actions"])) for s, n in request_["systems"].items()]
    parts.append(
        f"<h2>What would happen</h2><p>{len(request_['people'])} case(s) would open, "
        f"with {request_['actions']} action(s) in all.</p>"
        '<table><caption class="note">Per system</caption><thead><tr><th scope="col">System</th>'
        '<th scope="col">Accounts touched</th><th scope="col">Actions</th></tr></thead>'
        f"<tbody>{_rows(systems)}</tbody></table>"
        '<h2>People</h2><ul class="people">' + "".join(f"<li>{escape(p)}</li>" for p in request_["people"]) + "</ul>"
    )
    if request_["decisions"]:
        decided = [
            (f"{d['approver']} ({d['recipient']})", f"{d['decision']} at {d['at']}") for d in request_["decisions"]
        ]
        parts.append(
            '<h2>Decisions</h2><table><thead><tr><th scope="col">Approver</th><th scope="col">Decision</th></tr>'
            f"</thead><tbody>{_rows(decided)}</tbody></table>"
        )
    status = request_["status"]
    if status == PENDING:
        parts.append(
            '<form method="post"><label for="approver">Your name</label>'
            '<input id="approver" type="text" name="approver" required maxlength="200" autocomplete="name">'
            '<button type="submit" name="decision" value="approve">Approve</button>'
            '<button type="submit" name="decision" value="reject" class="secondary">Reject</button></form>'
        )
    else:
        outcome = (request_.get("outcome") or {}).get("message", "")
        parts.append(
            f'<p class="status" role="status">This request is {escape(status)}.'
            + (f" {escape(outcome)}" if outcome else "")
            + "</p>"
        )
    return page("Approve a halted sweep", "".join(parts))


@router.get("/approvals/a/{token}")
def show_approval(request: Request, token: str) -> Response:
    try:
        grant = _grant(request, token)
        return html(render(_load(request.app.state.services.engine, grant), grant.recipient))
    except PageRefused as exc:
        return refused(request, exc)


@router.post("/approvals/a/{token}")
async def decide_approval(request: Request, token: str) -> Response:
    try:
        services = request.app.state.services
        grant = _grant(request, token)
        engine = services.engine
        current = await run_in_threadpool(_load, engine, grant)
        if current["status"] != PENDING:
            raise PageRefused(409, "already_decided", f"this request is already {current['status']}; nothing changed")
        form = await read_form(request, services.settings.read_timeout_seconds, uploads=False)
        approver = text_field(form, "approver", required="give your name: the decision is recorded with it", limit=200)
        choice = text_field(form, "decision", required="approve or reject", limit=10)
        if choice not in ("approve", "reject"):
            raise PageRefused(400, "bad_field", "decision: approve or reject")
        link = {
            "recipient": grant.recipient,
            "issued_at": grant.issued_at.isoformat(),
            "client": client_of(request, services.settings.trusted_proxy_header),
        }
        try:
            after = await run_in_threadpool(
                lambda: decide(
                    engine,
                    grant.subject,
                    recipient=grant.recipient,
                    approver=approver,
                    decision=APPROVED if choice == "approve" else REJECTED,
                    link=link,
                )
            )
        except DecisionError as exc:
            raise PageRefused(exc.status, "not_decided", str(exc)) from None
        message = {
            REJECTED: "Rejected: the sweep does not run, and nothing was opened.",
            APPROVED: f"Approved. {(after.get('outcome') or {}).get('message', '')}",
        }.get(after["status"], f"Your approval is recorded; {after['needed']} different approvers are needed.")
        return html(render(after, grant.recipient, message))
    except PageRefused as exc:
        return refused(request, exc)
