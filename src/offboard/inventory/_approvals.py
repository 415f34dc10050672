"""Approval requests for halted sweeps: what would happen, who may decide, and what they decided.

When the blast-radius guard halts a sweep, :func:`request_for` keeps a request (the people,
systems, counts and reasons) in ``<data dir>/approvals/<id>.json`` and posts it to the
approvers of ``sweep.approvers`` by the notifiers (event ``approval``), each with a personal
link to ``/approvals/a/<token>``. :func:`decide` records one ``approval`` entry per decision,
the same entry ``offboard sweep --approve --approver NAME`` records; a rejection closes the
request and opens nothing; once ``sweep.approvals`` different approvers have approved, the
sweep runs, approved for exactly those people (if it would now reach anyone else, it halts
again with a new request). A halted sweep that halts again for the same people keeps its
pending request (approvers are not asked twice).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config._durations import iso
from ..config._logging import get_logger
from ..errors import ApprovalRequired, ConfigError, OffboardError

__all__ = ["approval_settings", "request_for", "load", "decide", "close_pending", "DecisionError"]

log = get_logger("offboard.approvals")
_lock = threading.Lock()
ID_RE = re.compile(r"^apr-[0-9a-f]{16}$")
PENDING, APPROVED, REJECTED, CLOSED = "pending", "approved", "rejected", "closed"


class DecisionError(ApprovalRequired):
    """A decision that cannot be taken (already decided, the same approver twice, no such request)."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


def approval_settings(config: Any) -> tuple[int, list[str]]:
    """``sweep.approvals`` (how many different approvers a halted sweep needs, default 1) and
    ``sweep.approvers`` (email addresses the request goes to); ConfigError naming the key."""
    where = str(getattr(config, "source", None) or "config")
    sweep = config.sweep or {}
    needed = sweep.get("approvals", 1)
    if not isinstance(needed, int) or isinstance(needed, bool) or not 1 <= needed <= 5:
        raise ConfigError(f"sweep.approvals: {needed!r} is not a number of approvers from 1 to 5", where=where)
    approvers = sweep.get("approvers", [])
    if not isinstance(approvers, list) or not all(isinstance(a, str) and "@" in a for a in approvers):
        raise ConfigError("sweep.approvers: give a list of email addresses", where=where)
    if approvers and len(set(a.lower() for a in approvers)) < needed:
        raise ConfigError(
            f"sweep.approvers: {len(approvers)} approver(s) listed but sweep.approvals needs {needed} different ones",
            where=where,
        )
    return needed, [a.lower() for a in approvers]


def _dir(engine: Any) -> Path:
    return Path(engine.data_dir) / "approvals"


@contextlib.contextmanager
def _locked(engine: Any) -> Iterator[None]:
    """One decision at a time, across threads and processes sharing the data directory."""
    directory = _dir(engine)
    directory.mkdir(parents=True, exist_ok=True)
    with _lock, open(directory / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _save(engine: Any, request: dict[str, Any]) -> None:
    path = _dir(engine) / f"{request['id']}.json"
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(request, indent=2, ensure_ascii=False))
    os.replace(tmp, path)


def load(engine: Any, request_id: str) -> dict[str, Any]:
    """The request ``request_id``; DecisionError (404) when there is none."""
    if not ID_RE.match(request_id or ""):
        raise DecisionError(f"no approval request {request_id!r}", 404)
    try:
        return json.loads((_dir(engine) / f"{request_id}.json").read_text())
    except FileNotFoundError:
        raise DecisionError(f"no approval request {request_id!r}", 404) from None


def _pending(engine: Any) -> list[dict[str, Any]]:
    directory = _dir(engine)
    found = []
    for path in sorted(directory.glob("apr-*.json")) if directory.exists() else []:
        request = json.loads(path.read_text())
        if request["status"] == PENDING:
            found.append(request)
    return found


def _systems(plans: list[Any]) -> dict[str, dict[str, int]]:
    """Per system: the accounts the sweep would touch and the actions it would take."""
    accounts: dict[str, set[str]] = {}
    actions: dict[str, int] = {}
    for plan in plans:
        for action in plan.actions:
            system = action.account.system
            accounts.setdefault(system, set()).add(action.account.id)
            actions[system] = actions.get(system, 0) + 1
    return {s: {"accounts": len(accounts[s]), "actions": actions[s]} for s in sorted(actions)}


def request_for(engine: Any, result: Any, summary: dict[str, Any]) -> dict[str, Any]:
    """The pending request for a halted sweep: an existing one for the same people and reasons, or a new one
    (recorded as ``approval_requested`` and posted to the approvers)."""
    needed, approvers = approval_settings(engine.config)
    people = sorted(summary["people"])
    with _locked(engine):
        for request in _pending(engine):
            if request["people"] == people and request["reasons"] == result.reasons:
                return request
        now = engine.clock()
        request = {
            "id": f"apr-{secrets.token_hex(8)}",
            "scope": "sweep",
            "status": PENDING,
            "created_at": iso(now),
            "reasons": list(result.reasons),
            "people": people,
            "systems": _systems(result.plans),
            "actions": sum(len(p.actions) for p in result.plans),
            "summary": summary,
            "needed": needed,
            "approvers": approvers,
            "decisions": [],
            "outcome": None,
        }
        _save(engine, request)
    engine.record(
        "approval_requested",
        None,
        {
            "request": request["id"],
            "scope": "sweep",
            "reasons": request["reasons"],
            "people": people,
            "systems": request["systems"],
            "needed": needed,
            "approvers": approvers,
        },
    )
    _post(engine, request)
    return request


def _post(engine: Any, request: dict[str, Any]) -> None:
    """Send the request to each approver with a personal link (or to the IT destination when none is listed)."""
    from ..checklist._links import links_for
    from ..checklist._notifiers import Notice, notify

    links = links_for(engine.config)
    now = engine.clock()
    counts = ", ".join(f"{system}: {n['accounts']} accounts" for system, n in request["systems"].items())
    text = (
        f"A sweep halted before any action and waits for {request['needed']} approval(s): "
        + "; ".join(request["reasons"])
        + f".\nIt would open {len(request['people'])} case(s) ({request['actions']} actions; {counts})."
    )
    subject = f"Approval needed: sweep of {len(request['people'])} people"
    for approver in request["approvers"] or [""]:
        if links is not None and approver:
            body = text + f"\nReview and decide (a personal link): {links.approval_url(request['id'], approver, now)}"
        else:
            body = text + f"\nTo approve: offboard sweep --approve --approver NAME (request {request['id']})"
        if not notify(engine.config, "approval", Notice("approval", subject, body, (approver,) if approver else ())):
            log.warning("approval request not delivered", request=request["id"], approver=approver or "IT")


def _entry(request: dict[str, Any], approver: str, decision: str, via: str, link: Any) -> dict[str, Any]:
    """The ``approval`` entry, the same from the page and from the CLI."""
    return {
        **request["summary"],
        "scope": "sweep",
        "approver": approver,
        "decision": decision,
        "reasons": request["reasons"],
        "request": request["id"],
        "via": via,
        "link": link,
    }


def cli_entry(summary: dict[str, Any], reasons: list[str], approver: str) -> dict[str, Any]:
    """The ``approval`` entry of ``offboard sweep --approve --approver NAME``."""
    request = {"summary": summary, "reasons": reasons, "id": None}
    return _entry(request, approver, "approved", "cli", None)


def decide(
    engine: Any, request_id: str, *, recipient: str, approver: str, decision: str, link: dict[str, Any]
) -> dict[str, Any]:
    """Record ``approver``'s decision (reached through ``recipient``'s link); run the sweep when enough approved.
    The request as it stands afterwards."""
    approver = (approver or "").strip()
    if not approver:
        raise DecisionError("give your name: the decision is recorded with it", 400)
    if decision not in (APPROVED, REJECTED):
        raise DecisionError("decide approve or reject", 400)
    with _locked(engine):
        request = load(engine, request_id)
        if request["status"] != PENDING:
            raise DecisionError(f"this request is already {request['status']}; nothing was changed")
        for earlier in request["decisions"]:
            if earlier["recipient"] == recipient:
                raise DecisionError(f"you already decided ({earlier['decision']} as {earlier['approver']})")
            if earlier["approver"].casefold() == approver.casefold():
                raise DecisionError(f"{approver} already decided; a second approver must be someone else")
        at = iso(engine.clock())
        engine.record("approval", None, _entry(request, approver, decision, "approval page", link))
        request["decisions"].append({"approver": approver, "recipient": recipient, "decision": decision, "at": at})
        approvals = [d["approver"] for d in request["decisions"] if d["decision"] == APPROVED]
        if decision == REJECTED:
            request["status"] = REJECTED
        elif len(approvals) >= request["needed"]:
            request["status"] = APPROVED
        _save(engine, request)
    if request["status"] == APPROVED:
        from ._sweep import run_sweep

        try:
            result = run_sweep(engine, approve=True, approver=approvals, recorded=True, expected=set(request["people"]))
            outcome = {"halted": result.halted, "message": result.message, "cases": [c.case_id for c in result.cases]}
        except OffboardError as exc:  # approved, but it could not run: say so, and how to run it by hand
            names = " ".join(f'--approver "{a}"' for a in approvals)
            log.error("approved sweep could not run", request=request_id, error=str(exc))
            outcome = {
                "halted": True,
                "message": f"approved, but the sweep could not run: {exc}. Run it with "
                f"`offboard sweep --approve {names}`",
                "cases": [],
            }
        with _locked(engine):
            request = load(engine, request_id)
            request["outcome"] = outcome
            _save(engine, request)
    return request


def close_pending(engine: Any, why: str) -> None:
    """A sweep ran (approved or under the limits): earlier pending requests no longer stand."""
    with _locked(engine):
        for request in _pending(engine):
            request["status"], request["outcome"] = CLOSED, {"message": why}
            _save(engine, request)
