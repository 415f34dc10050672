"""``offboard tasks``: the checklist steps of cases, who owns them, and closing them with a name."""

from __future__ import annotations

import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..models import CaseStatus, TaskStatus
from ._main import EXIT_OK, EXIT_USAGE, App, emit_json

out = Console(highlight=False)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _local(row: dict) -> str:
    due = datetime.fromisoformat(row["due_at"].replace("Z", "+00:00")).astimezone(ZoneInfo(row["timezone"]))
    return f"{due:%Y-%m-%d %H:%M}"


def task_tables(rows: list[dict]) -> list[Table]:
    """One table per case (its person and time zone in the title), tasks soonest due first."""
    by_case: dict[str, list[dict]] = {}
    for row in rows:
        by_case.setdefault(row["case"], []).append(row)
    tables = []
    for case, items in by_case.items():
        first = items[0]
        table = Table(
            title=f"Case {case}: {escape(first['person'])} ({first['case_status']}; due times in {first['timezone']})",
            title_justify="left",
        )
        for column in ("task", "owner", "due", "status", "title"):
            table.add_column(column, no_wrap=column in ("task", "due"))
        for row in items:
            if row["status"] == TaskStatus.OPEN:
                status = "[red]overdue[/]" if row["overdue"] else "open"
                status += " [bold]blocking[/]" if row["blocking"] else ""
            else:
                status = f"[green]{row['status']}[/] by {escape(row['closed_by'] or '?')}"
            table.add_row(escape(row["task"]), escape(row["owner"]), _local(row), status, escape(row["title"]))
        tables.append(table)
    return tables


@click.group("tasks", invoke_without_command=True)
@click.option("--case", "case_ref", help="Only this case (every task of it, open or closed).")
@click.option("--owner", help="Only tasks this role or team owns (manager, it, hr, security, ...).")
@click.option("--overdue", is_flag=True, help="Only open tasks past their due time.")
@click.option("--all", "include_closed", is_flag=True, help="Closed tasks too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (fields in docs/checklists.md).")
@click.pass_context
def tasks(
    ctx: click.Context, case_ref: str | None, owner: str | None, overdue: bool, include_closed: bool, as_json: bool
) -> None:
    """List checklist tasks: open ones of every case, soonest due first."""
    if ctx.invoked_subcommand is not None:
        return
    from ..checklist._tasks import list_tasks

    engine = ctx.obj.engine()
    case_id = None
    if case_ref is not None:
        case = engine.find_case(case_ref)
        if case is None:
            _fail(f"no case matches {case_ref!r} (see `offboard status`)")
        case_id = case["id"]
    rows = list_tasks(
        engine.store, engine.clock(), case_id=case_id, owner=owner, overdue=overdue, include_closed=include_closed
    )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print(
            "No overdue tasks." if overdue else "No open tasks." if case_id is None else f"Case {case_id} has no tasks."
        )
        return
    for table in task_tables(rows):
        out.print(table)


def _close(app: App, case: str, task: str, status: str, by: str, note: str, as_json: bool) -> None:
    from ..checklist._tasks import TaskError, close_task

    try:
        row = close_task(app.engine(), case, task, status=status, by=by, note=note)
    except TaskError as exc:
        _fail(str(exc))
    if as_json:
        emit_json(row)
        return
    out.print(
        f"Task {escape(task)} of case {row['case']} {status} by {escape(row['closed_by'])}; recorded in the audit log."
    )
    if row["case_status"] == CaseStatus.COMPLETE:
        out.print(f"[green]Case {row['case']} is complete: every account verified and no blocking task open.[/]")
    elif row["case_status"] == CaseStatus.AWAITING_TASKS:
        out.print(f"Case {row['case']} still awaits blocking tasks (offboard tasks --case {row['case']}).")


@tasks.command("done")
@click.argument("case")
@click.argument("task")
@click.option("--by", required=True, help="Who did it (recorded).")
@click.option("--note", default="", help="What was done, e.g. where the handover file is.")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def done(app: App, case: str, task: str, by: str, note: str, as_json: bool) -> None:
    """Mark TASK of CASE done."""
    _close(app, case, task, "done", by, note, as_json)


@tasks.command("skip")
@click.argument("case")
@click.argument("task")
@click.option("--by", required=True, help="Who decided (recorded).")
@click.option("--reason", required=True, help="Why it is not needed (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
@click.pass_obj
def skip(app: App, case: str, task: str, by: str, reason: str, as_json: bool) -> None:
    """Close TASK of CASE without doing it, saying why."""
    _close(app, case, task, "skipped", by, reason, as_json)


@tasks.command("link")
@click.argument("case")
@click.argument("task")
@click.option("--for", "recipient", required=True, help="Who the link is for (recorded when it is used).")
@click.option("--json", "as_json", is_flag=True, help="Print the link as JSON.")
@click.pass_obj
def link(app: App, case: str, task: str, recipient: str, as_json: bool) -> None:
    """Print a personal link to TASK of CASE (to resend one by hand); needs server.links_secret."""
    from ..checklist._links import links_for

    engine = app.engine()
    found = engine.find_case(case)
    if found is None:
        _fail(f"no case matches {case!r} (see `offboard status`)")
    if engine.store.tasks.get(found["id"], task) is None:
        _fail(f"case {found['id']} has no task {task!r} (see `offboard tasks --case {found['id']}`)")
    recipient = recipient.strip()
    if not recipient or len(recipient) > 200:
        _fail("--for: give who the link is for (an email address or a name, at most 200 characters)")
    links = links_for(engine.config)
    if links is None:
        _fail("personal links are off: set server.links_secret (and server.public_url) in the configuration")
        return
    url = links.task_url(found["id"], task, recipient, engine.clock())
    if as_json:
        emit_json({"case": found["id"], "task": task, "for": recipient, "url": url})
        return
    click.echo(url)


@tasks.command("remind")
@click.option("--json", "as_json", is_flag=True, help="Print the reminders sent as JSON.")
@click.pass_obj
def remind(app: App, as_json: bool) -> None:
    """Remind owners of tasks coming due and overdue (each once); run it from cron, or let `serve` sweeps do it."""
    from ..checklist._tasks import send_reminders

    engine = app.engine()
    if not engine.config.notifiers:
        _fail("no notifiers are configured (notifiers: in the configuration); nobody could be reminded")
    sent = send_reminders(engine)
    if as_json:
        emit_json(sent)
    else:
        for item in sent:
            out.print(
                f"{item['kind']}: case {item['case']} task {escape(item['task'])} -> {escape(', '.join(item['to']))}"
            )
        out.print(f"Sent {len(sent)} reminder(s).")
    sys.exit(EXIT_OK)
