"""HTML of the task and approval pages: server-rendered, no scripts, no external assets, readable on a phone.

Every value is escaped here; the routes hand over plain data. Forms post back to the page's own
address (the personal link), so the pages work without JavaScript and keep the token out of any
other site's reach (``Referrer-Policy: no-referrer``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["page", "error_page", "task_page", "done_page", "tasks_overview", "local_due", "CONDITIONS"]

CONDITIONS = ("good", "worn", "damaged", "missing")

_STYLE = """
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#fff;
margin:0 auto;padding:1rem;max-width:46rem}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0}
fieldset{border:1px solid #767676;border-radius:.4rem;margin:1rem 0;padding:.5rem 1rem}legend{font-weight:600}
label{display:block;margin:.5rem 0 .2rem;font-weight:600}
label.choice{display:flex;gap:.5rem;align-items:center;font-weight:400;margin:.35rem 0}
input[type=text],input[type=url],input[type=date],textarea{width:100%;padding:.5rem;font:inherit;
border:1px solid #555;border-radius:.3rem}
input[type=radio],input[type=checkbox]{width:1.25rem;height:1.25rem}
button{font:inherit;padding:.6rem 1.2rem;margin:.5rem .5rem .5rem 0;border-radius:.3rem;border:2px solid #0b4f9c;
background:#0b4f9c;color:#fff;cursor:pointer;min-height:44px}
button.secondary{background:#fff;color:#0b4f9c}
:focus-visible{outline:3px solid #b45f00;outline-offset:2px}
a{color:#0b4f9c}.note{color:#3d3d3d}.status{padding:.75rem 1rem;border-left:4px solid #0b4f9c;background:#eef4fb}
.problem{border-left-color:#a4001d;background:#fbeef0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ccc;
vertical-align:top}
@media (max-width:30rem){dl{grid-template-columns:1fr}dt{margin-top:.4rem}}
"""


def page(title: str, body: str) -> str:
    """A whole page around ``body`` (already HTML)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)} - offboard</title><style>{_STYLE}</style></head>"
        f'<body><main id="main"><h1>{escape(title)}</h1>{body}</main></body></html>'
    )


def error_page(title: str, message: str) -> str:
    return page(title, f'<p class="status problem" role="alert">{escape(message)}</p>')


def local_due(due_at: datetime, timezone: str) -> str:
    local = due_at.astimezone(ZoneInfo(timezone))
    return f"{local:%A %d %B %Y, %H:%M} ({timezone})"


def _facts(items: Iterable[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items) + "</dl>"


def _others(others: list[dict[str, Any]]) -> str:
    if not others:
        return ""
    rows = "".join(
        f'<li><a href="{escape(o["href"])}">{escape(o["title"])}</a> '
        f'<span class="note">(due {escape(o["due"])})</span></li>'
        for o in others
    )
    return f"<h2>Your other open tasks in this case</h2><ul>{rows}</ul>"


def _form(kind: str, task: dict[str, Any], today: str) -> str:
    """The fields of the task's kind: equipment return, handover, exit interview, or a plain done/skip."""
    if kind == "return":
        asset = task.get("asset") or {}
        tag = asset.get("asset_tag", "")
        radios = "".join(
            f'<label class="choice"><input type="radio" name="condition" value="{c}" required> {c}</label>'
            for c in CONDITIONS
        )
        return (
            f'<form method="post" enctype="multipart/form-data">'
            f"<fieldset><legend>What came back</legend>"
            f'<label class="choice"><input type="checkbox" name="asset_tag_confirmed" value="yes"> '
            f"The asset tag on the item reads {escape(tag)}</label></fieldset>"
            f"<fieldset><legend>Condition</legend>{radios}"
            f'<p class="note">"missing" keeps the task open and tells IT and the manager.</p></fieldset>'
            f'<label for="note">Note</label><textarea id="note" name="note" rows="3" maxlength="2000"></textarea>'
            f'<label for="photo">Photo (optional, JPEG, PNG or WebP)</label>'
            f'<input id="photo" type="file" name="photo" accept="image/jpeg,image/png,image/webp">'
            f'<button type="submit" name="action" value="return">Record the return</button></form>'
        )
    if kind == "handover":
        return (
            '<form method="post" enctype="multipart/form-data">'
            '<label for="successor">Successor (who takes over)</label>'
            '<input id="successor" type="text" name="successor" required maxlength="200" autocomplete="name">'
            '<label for="link">Link to the handover document</label>'
            '<input id="link" type="url" name="link" maxlength="2000" placeholder="https://">'
            '<label for="file">Or the handover file</label><input id="file" type="file" name="file">'
            '<label for="note">Note</label><textarea id="note" name="note" rows="3" maxlength="2000"></textarea>'
            '<button type="submit" name="action" value="handover">Mark the handover done</button></form>'
        )
    if kind == "exit_interview":
        return (
            '<form method="post">'
            "<fieldset><legend>Was the exit interview held?</legend>"
            '<label class="choice"><input type="radio" name="held" value="yes" required> Yes</label>'
            '<label class="choice"><input type="radio" name="held" value="no"> No (say why below)</label>'
            "</fieldset>"
            f'<label for="date">Date held</label><input id="date" type="date" name="date" value="{escape(today)}">'
            '<label for="note">Note (not the interview\'s content)</label>'
            '<textarea id="note" name="note" rows="3" maxlength="2000"></textarea>'
            '<button type="submit" name="action" value="exit_interview">Record it</button></form>'
        )
    return (
        '<form method="post"><label for="note">Note (required to skip: why the task is not needed)</label>'
        '<textarea id="note" name="note" rows="3" maxlength="2000"></textarea>'
        '<button type="submit" name="action" value="done">Mark done</button>'
        '<button type="submit" name="action" value="skip" class="secondary">Skip</button></form>'
    )


def task_page(
    task: dict[str, Any],
    person: str,
    recipient: str,
    kind: str,
    others: list[dict[str, Any]],
    today: str,
    message: str = "",
    owner_zone: str | None = None,
) -> str:
    """The page of one open (or closed) task; its due time in the owner's zone when known, and the leaver's."""
    due_at = datetime.fromisoformat(task["due_at"].replace("Z", "+00:00"))
    due = local_due(due_at, task["timezone"])
    if owner_zone and owner_zone != task["timezone"]:
        due = f"{local_due(due_at, owner_zone)}, your time; {due} where the person leaving is"
    facts = [
        ("Person leaving", person),
        ("Task", task["title"]),
        ("Due", due),
        ("Owner", f"{task['owner']} (this link is for {recipient})"),
        ("Case", task["case"]),
    ]
    if task.get("asset"):
        asset = task["asset"]
        facts.append(("Item", f"{asset.get('kind', '')} {asset.get('asset_tag', '')}".strip()))
    body = _facts(facts)
    if message:
        body = f'<p class="status" role="status">{escape(message)}</p>' + body
    if task["status"] != "open":
        body += (
            f'<p class="status" role="status">This task is {escape(task["status"])} '
            f"(by {escape(task['closed_by'] or '?')} at {escape(task['closed_at'] or '?')}).</p>"
        )
    else:
        body += _form(kind, task, today)
    return page("Offboarding task", body + _others(others))


def done_page(title: str, lines: list[str], others: list[dict[str, Any]] | None = None) -> str:
    """What a closed (or recorded) task says, and the recipient's other open tasks."""
    body = '<div class="status" role="status">' + "".join(f"<p>{escape(line)}</p>" for line in lines) + "</div>"
    return page(title, body + _others(others or []))


def tasks_overview(email: str, rows: list[dict[str, Any]]) -> str:
    """``/tasks/``: the signed-in person's open tasks, each with its link."""
    if not rows:
        return page("My open tasks", f"<p>Signed in as {escape(email)}. You hold no open task.</p>")
    items = "".join(
        f'<tr><td><a href="{escape(r["href"])}">{escape(r["title"])}</a></td><td>{escape(r["person"])}</td>'
        f"<td>{escape(r['due'])}</td></tr>"
        for r in rows
    )
    table = (
        '<table><caption class="note">Open tasks, soonest due first</caption>'
        '<thead><tr><th scope="col">Task</th><th scope="col">Person leaving</th><th scope="col">Due</th></tr></thead>'
        f"<tbody>{items}</tbody></table>"
    )
    return page("My open tasks", f"<p>Signed in as {escape(email)}.</p>{table}")
