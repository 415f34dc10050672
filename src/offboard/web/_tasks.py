"""Task pages in ``offboard serve``: the owner of a checklist task closes it from the personal link in a reminder.

``GET /tasks/t/{token}`` shows the task (the person leaving, what to do, when it is due in the
owner's time zone, the owner's other open tasks in the case); ``POST`` to the same address closes
it exactly as ``offboard tasks done``/``skip`` does, with the link's recipient as who did it and
the link (issued, opened, from where) in the audit entry. What a page records depends on the task:

- an equipment return (``return-<tag>``): asset tag confirmed, condition good/worn/damaged/missing,
  a note and an optional photo (kept beside the case, its SHA-256 in the entry); ``missing`` keeps
  the task open, records an ``equipment_return`` entry and tells IT and the manager;
- ``handover``: a link to the handover document or the file itself, and the successor's name;
- ``exit-interview``: that it was held, and the date (never the content);
- any other task: done, or skipped with a reason.

The links need ``server.links_secret``; without it the pages answer 404. ``/tasks/`` (my open tasks)
needs OpenID Connect sign-in, see :mod:`offboard.web._oidc`.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..checklist._links import Grant, LinkError, Links
from ..checklist._tasks import TaskError, close_task, list_tasks, recipients
from ..config._durations import iso
from ..config._logging import get_logger
from ._limits import client_of, rate_limited
from ._tasks_forms import PageRefused, html, read_form, refused, stored_upload, text_field
from ._tasks_html import CONDITIONS, done_page, local_due, task_page

__all__ = ["router", "task_kind", "links_of", "other_tasks"]

log = get_logger("offboard.tasks.pages")
router = APIRouter(dependencies=[Depends(rate_limited)], include_in_schema=False)
_closing = threading.Lock()
_opened: set[str] = set()  # links whose first opening is recorded (per process)
_zones: dict[int, tuple[float, dict[str, str]]] = {}  # engine -> (read at, email -> time zone)
ZONES_SECONDS = 300


def links_of(request: Request) -> Links:
    links = getattr(request.app.state, "links", None)
    if links is None:
        raise PageRefused(404, "links_off", "task and approval links are off: set server.links_secret to turn them on")
    return links


def task_kind(task: dict[str, Any]) -> str:
    """Which form a task gets: ``return``, ``handover``, ``exit_interview`` or ``plain``."""
    if task["source"] == "equipment" and task.get("asset"):
        return "return"
    if task["task"] == "handover":
        return "handover"
    if task["task"] == "exit-interview":
        return "exit_interview"
    return "plain"


def _grant(request: Request, token: str) -> Grant:
    services = request.app.state.services
    try:
        return links_of(request).check(token, "task", services.clock())
    except LinkError as exc:
        raise PageRefused(410 if exc.code == "expired" else 403, exc.code, str(exc)) from None


def _task(engine: Any, grant: Grant, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """The task the grant opens, as ``offboard tasks --json`` shows it, and the person's record."""
    case_id, task_id = grant.case_task
    row = engine.store.tasks.get(case_id, task_id)
    if row is None:
        raise PageRefused(404, "not_found", "the task of this link no longer exists")
    shown = next(t for t in list_tasks(engine.store, now, case_id=case_id) if t["task"] == task_id)
    return shown, json.loads(row["person"] or "{}")


def other_tasks(
    engine: Any, links: Links, task: dict[str, Any], person: dict[str, Any], recipient: str, now: datetime
) -> list[dict[str, Any]]:
    """The case's other open tasks this recipient holds, each with a link of its own."""
    out = []
    for other in list_tasks(engine.store, now, case_id=task["case"]):
        if other["task"] == task["task"] or other["status"] != "open":
            continue
        holders = recipients(engine.config, other["owner"], person) or [other["owner"]]
        if recipient in holders:
            out.append(
                {
                    "title": other["title"],
                    "due": local_due(datetime.fromisoformat(other["due_at"].replace("Z", "+00:00")), other["timezone"]),
                    "href": links.task_url(other["case"], other["task"], recipient, now),
                }
            )
    return out


def owner_zone(engine: Any, email: str) -> str | None:
    """The time zone of the person ``email`` names, from the people sources (read at most every 5 minutes)."""
    import time

    from ..errors import OffboardError

    read_at, zones = _zones.get(id(engine), (0.0, {}))
    if time.monotonic() - read_at > ZONES_SECONDS:
        zones = {}
        try:
            for source in engine.people():
                for person in source.people():
                    if person.email and person.timezone and _known_zone(person.timezone):
                        zones.setdefault(person.email.lower(), person.timezone)
        except OffboardError as exc:  # the page still shows the due time in the leaver's zone
            log.warning("people sources unreadable; owners' time zones unknown", error=str(exc))
        _zones[id(engine)] = (time.monotonic(), zones)
    return zones.get(email.lower())


def _known_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _who(person: dict[str, Any]) -> str:
    name, pid = person.get("name"), person.get("id", "?")
    return f"{name} ({pid})" if name else pid


def _link_fields(request: Request, grant: Grant, now: datetime) -> dict[str, Any]:
    services = request.app.state.services
    return {
        "recipient": grant.recipient,
        "issued_at": iso(grant.issued_at),
        "expires_at": iso(grant.expires_at),
        "used_at": iso(now),
        "client": client_of(request, services.settings.trusted_proxy_header),
        "user_agent": request.headers.get("user-agent", "")[:200],
    }


def _record_opened(request: Request, token: str, grant: Grant, task: dict[str, Any], now: datetime) -> None:
    """An ``task_link_opened`` entry the first time (in this process) a link to an open task is opened."""
    key = token.rsplit(".", 1)[-1]
    if key in _opened or task["status"] != "open":
        return
    engine = request.app.state.services.engine
    fields = _link_fields(request, grant, now)
    fields.pop("used_at")
    engine.record(
        "task_link_opened",
        task["case"],
        {"case": task["case"], "person": {"id": task["person"]}, "task": task["task"], "opened_at": iso(now), **fields},
    )
    if len(_opened) > 100_000:  # bounded: at worst a link's first opening is recorded twice
        _opened.clear()
    _opened.add(key)


@router.get("/tasks/t/{token}")
def show_task(request: Request, token: str) -> Response:
    try:
        services = request.app.state.services
        now = services.clock()
        grant = _grant(request, token)
        task, person = _task(services.engine, grant, now)
        _record_opened(request, token, grant, task, now)
        others = other_tasks(services.engine, links_of(request), task, person, grant.recipient, now)
        today = now.astimezone(_zone(task)).date().isoformat()
        zone = owner_zone(services.engine, grant.recipient)
        page = task_page(task, _who(person), grant.recipient, task_kind(task), others, today, owner_zone=zone)
        return html(page)
    except PageRefused as exc:
        return refused(request, exc)


def _zone(task: dict[str, Any]) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(task["timezone"])


@router.post("/tasks/t/{token}")
async def act_on_task(request: Request, token: str) -> Response:
    try:
        services = request.app.state.services
        grant = _grant(request, token)  # before reading the body: an unknown sender gets nothing further
        now = services.clock()
        task, person = await run_in_threadpool(_task, services.engine, grant, now)
        if task["status"] != "open":
            raise PageRefused(
                409,
                "already_closed",
                f"this task is already {task['status']} (by {task['closed_by']} at {task['closed_at']}); "
                "nothing was changed",
            )
        kind = task_kind(task)
        form = await read_form(request, services.settings.read_timeout_seconds, uploads=kind in ("return", "handover"))
        lines = await _act(request, grant, task, person, kind, form, now)
        others = await run_in_threadpool(
            other_tasks, services.engine, links_of(request), task, person, grant.recipient, services.clock()
        )
        return html(done_page("Recorded", lines, others))
    except PageRefused as exc:
        return refused(request, exc)


def _cases_dir(request: Request, case_id: str) -> Path:
    return Path(request.app.state.services.engine.data_dir) / "cases" / case_id


async def _act(
    request: Request, grant: Grant, task: dict[str, Any], person: dict[str, Any], kind: str, form: Any, now: datetime
) -> list[str]:
    """Do what the form asks; the lines of the confirmation page."""
    engine = request.app.state.services.engine
    note = text_field(form, "note")
    extra: dict[str, Any] = {"via": "task page", "link": _link_fields(request, grant, now)}
    status = "done"
    if kind == "return":
        condition = text_field(form, "condition", required="choose good, worn, damaged or missing", limit=20)
        if condition not in CONDITIONS:
            raise PageRefused(400, "bad_field", f"condition: {condition!r} is not one of {', '.join(CONDITIONS)}")
        confirmed = text_field(form, "asset_tag_confirmed", limit=10) == "yes"
        tag = (task.get("asset") or {}).get("asset_tag", "")
        if condition != "missing" and not confirmed:
            raise PageRefused(400, "missing_field", f"asset_tag_confirmed: check that the item's asset tag reads {tag}")
        photo = await stored_upload(
            form, "photo", _cases_dir(request, task["case"]) / "returns", task["task"], image=True
        )
        item = {
            "asset_tag": tag,
            "kind": (task.get("asset") or {}).get("kind"),
            "asset_tag_confirmed": confirmed,
            "condition": condition,
            "note": note,
            "photo": photo,
        }
        if condition == "missing":
            await run_in_threadpool(_missing, engine, task, person, item, extra)
            return [
                f"Recorded: {item['kind']} {tag} is missing. The task stays open; IT and the manager were told.",
                f"Recorded as {grant.recipient} at {iso(now)}.",
            ]
        extra["equipment"] = item
    elif kind == "handover":
        successor = text_field(form, "successor", required="name who takes over the work", limit=200)
        link = text_field(form, "link")
        if link and not link.startswith(("https://", "http://")):
            raise PageRefused(400, "bad_field", "link: give a web address starting with https://")
        directory = _cases_dir(request, task["case"]) / "handover"
        stored = await stored_upload(form, "file", directory, "handover", image=False)
        if not link and stored is None:
            raise PageRefused(400, "missing_field", "link: give a link to the handover document, or attach the file")
        extra["handover"] = {"successor": successor, "link": link or None, "file": stored}
    elif kind == "exit_interview":
        held = text_field(form, "held", required="say whether the exit interview was held", limit=5)
        if held not in ("yes", "no"):
            raise PageRefused(400, "bad_field", "held: answer yes or no")
        date = text_field(form, "date", limit=10)
        if held == "yes":
            try:
                day = datetime.strptime(date, "%Y-%m-%d").date()
            except ValueError:
                raise PageRefused(400, "bad_field", "date: give the date it was held as YYYY-MM-DD") from None
            if day > now.astimezone(_zone(task)).date():
                raise PageRefused(400, "bad_field", "date: the exit interview cannot have been held in the future")
            extra["exit_interview"] = {"held": True, "date": date}
        else:
            if not note:
                raise PageRefused(400, "missing_field", "note: say why the exit interview was not held")
            status, extra["exit_interview"] = "skipped", {"held": False, "date": None}
    else:
        action = text_field(form, "action", limit=10) or "done"
        if action not in ("done", "skip"):
            raise PageRefused(400, "bad_field", "action: done or skip")
        status = "skipped" if action == "skip" else "done"
    try:
        result = await run_in_threadpool(
            _close_once, engine, task["case"], task["task"], status=status, by=grant.recipient, note=note, extra=extra
        )
    except TaskError as exc:  # closed by someone else meanwhile, or a skip without a reason
        code = 409 if "already" in str(exc) else 400
        message = str(exc).replace("--reason TEXT", "a note saying why").replace("--by NAME", "a name")
        raise PageRefused(code, "not_closed", message) from None
    lines = [f'"{task["title"]}" is {status}, recorded as {grant.recipient} at {iso(now)}.']
    if result["case_status"] == "complete":
        lines.append("That was the last blocking task: the case is complete.")
    return lines


def _close_once(engine: Any, case: str, task: str, **kw: Any) -> dict[str, Any]:
    """close_task, one at a time in this server: two clicks at once close a task once (the second is refused)."""
    with _closing:
        return close_task(engine, case, task, **kw)


def _missing(engine: Any, task: dict[str, Any], person: dict[str, Any], item: dict[str, Any], extra: dict) -> None:
    """A missing item: audited, the task stays open, IT and the manager are told."""
    from ..checklist._notifiers import Notice, notify

    engine.record(
        "equipment_return",
        task["case"],
        {"case": task["case"], "person": {"id": task["person"]}, "task": task["task"], "equipment": item, **extra},
    )
    engine.record.seal()
    who = person.get("name") or person.get("id")
    subject = f"Missing: {item['kind']} {item['asset_tag']} of {who}"
    text = (
        f"{extra['link']['recipient']} recorded {item['kind']} {item['asset_tag']} of {who} (case {task['case']}) "
        f"as missing at {extra['link']['used_at']}." + (f" Note: {item['note']}" if item["note"] else "")
    )
    to_it = notify(engine.config, "equipment_missing", Notice("equipment_missing", subject, text))
    manager = person.get("manager") or ""
    to_manager = (
        notify(engine.config, "equipment_missing", Notice("equipment_missing", subject, text, (manager,)))
        if "@" in manager
        else []
    )
    if not to_it and not to_manager:
        log.warning("nobody was told of a missing item", case=task["case"], task=task["task"])
