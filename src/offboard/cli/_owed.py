"""``offboard cases owed|retry|abandon``: owed work (failed actions retried until verified or abandoned)."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._main import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, App, emit_json

out = Console(highlight=False)


def age(delta: timedelta) -> str:
    """``3d 4h``, ``5h 12m`` or ``7m``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def owed_summary(engine: Any) -> str | None:
    """One line for ``offboard status``: how much work is owed and the age of the oldest, or None."""
    from ..engine._owed import owed

    items = owed(engine)
    if not items:
        return None
    count = sum(len(i.actions) for i in items)
    oldest = age(engine.clock() - min(i.since for i in items))
    return f"Owed: {count} action(s) in {len(items)} case(s), oldest {oldest}; see offboard cases owed"


@click.group()
def cases() -> None:
    """Owed work: failed actions, retried with a backoff until verified, escalated, or abandoned."""


@cases.command("owed")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def owed_command(app: App, as_json: bool) -> None:
    """List owed actions (failed or unverified, in incomplete cases) with their age. Exits 3 if any."""
    from ..engine._owed import owed

    engine = app.engine(read_only=True)
    now = engine.clock()
    items = owed(engine)
    if as_json:
        emit_json([i.to_dict(now) for i in items])
    elif not items:
        out.print("Nothing owed.")
    else:
        table = Table(title="Owed actions", title_justify="left")
        for column in ("case", "person", "action", "owed", "age", "retries", "next retry", "why"):
            table.add_column(column, no_wrap=column in ("case", "action", "age"))
        for item in items:
            for row in item.actions:
                line = item.describe(row)
                what, _, why = line.partition(": ")
                table.add_row(
                    item.case_id,
                    escape(item.person_id),
                    str(row["id"]),
                    escape(what),
                    age(now - item.since),
                    str(item.retries),
                    "now" if item.due_at <= now else f"in {age(item.due_at - now)}",
                    escape(why),
                )
        out.print(table)
    sys.exit(EXIT_INCOMPLETE if items else EXIT_OK)


@cases.command("retry")
@click.argument("case", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def retry_command(app: App, case: str | None, as_json: bool) -> None:
    """Retry owed actions of CASE (or of every case) now, not waiting for the backoff. Exits 3 if any still fail."""
    engine = app.engine(needs_connectors=True)
    case_id = None
    if case is not None:
        row = engine.find_case(case)
        if row is None:
            click.echo(f"error: no case matches {case!r}", err=True)
            sys.exit(EXIT_USAGE)
        case_id = row["id"]
    results = engine.retry_owed(case_id=case_id, force=True)
    if as_json:
        emit_json([r.to_dict() for r in results])
    elif not results:
        out.print("Nothing owed." if case_id is None else f"Case {case_id} owes nothing.")
    else:
        from ._cases import result_table

        for result in results:
            out.print(result_table(result))
        still = sum(not r.ok for r in results)
        out.print(f"Retried {len(results)} case(s); {still} still incomplete.")
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_INCOMPLETE)


@cases.command("abandon")
@click.argument("case")
@click.option("--action", "action_id", type=int, required=True, help="The owed action's id (offboard cases owed).")
@click.option("--reason", required=True, help="Why it is given up; recorded in the audit log.")
@click.option("--by", "by", required=True, help="Who gives it up; recorded in the audit log.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def abandon_command(app: App, case: str, action_id: int, reason: str, by: str, as_json: bool) -> None:
    """Give up on one owed action of CASE (recorded with who and why); the case stays incomplete."""
    from ..engine._owed import abandon
    from ..errors import OffboardError

    try:
        result = abandon(app.engine(), case, action_id, reason, by)
    except OffboardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if as_json:
        emit_json(result.to_dict())
    else:
        out.print(f"Action {action_id} of case {result.case_id} abandoned by {escape(by)}; the case stays incomplete.")
    sys.exit(EXIT_OK)
