"""Inventory and sweep commands: ``inventory sync|show|orphans`` and ``sweep``."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._main import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, App, emit_json

out = Console(highlight=False)
COLUMNS = (
    "system",
    "account_id",
    "name",
    "email",
    "active",
    "admin",
    "person_id",
    "matched_by",
    "first_seen",
    "last_seen",
)


def _format_options(fn: Any) -> Any:
    fn = click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")(fn)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def _emit_rows(
    rows: Iterable[dict[str, Any]], as_json: bool, as_csv: bool, title: str, columns: tuple[str, ...] = COLUMNS
) -> int:
    if as_json and as_csv:
        click.echo("error: choose one of --json and --csv", err=True)
        sys.exit(EXIT_USAGE)
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        n = 0
        for row in rows:
            writer.writerow({k: _text(row.get(k)) for k in columns})
            n += 1
        return n
    rows = list(rows)
    if as_json:
        emit_json([{k: _plain(row.get(k)) for k in columns} for row in rows])
        return len(rows)
    table = Table(title=title, title_justify="left")
    shown = [c for c in columns if c not in ("first_seen",)]
    for column in shown:
        table.add_column(column)
    for row in rows:
        table.add_row(*(escape(_text(row.get(c))) for c in shown))
    out.print(table)
    return len(rows)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(_plain(value))


@click.group("inventory")
def inventory() -> None:
    """Sync, show and audit the account inventory."""


@inventory.command("sync")
@click.option("--system", "systems", multiple=True, help="Only this connector instance (repeatable).")
@_format_options
@click.pass_obj
def sync_command(app: App, systems: tuple[str, ...], as_json: bool, as_csv: bool) -> None:
    """List every account in every system and correlate it to people."""
    from ..inventory._inventory import sync

    report = sync(app.engine(needs_connectors=True), list(systems) or None)
    rows = [s.to_dict() for s in report.systems]
    columns = ("system", "accounts", "matched", "removed", "pages", "status", "error")
    if as_json:
        emit_json(report.to_dict())
    else:
        _emit_rows(rows, False, as_csv, f"Inventory sync ({report.people} people known)", columns)
        if report.unlisted and not as_csv:
            out.print(f"[yellow]Cannot list accounts: {escape(', '.join(report.unlisted))}[/]")
    sys.exit(EXIT_OK if report.ok else EXIT_INCOMPLETE)


@inventory.command("show")
@click.argument("person")
@_format_options
@click.pass_obj
def show(app: App, person: str, as_json: bool, as_csv: bool) -> None:
    """Every inventoried account of PERSON (email, alias or employee id)."""
    from ..inventory._inventory import accounts_of

    engine = app.engine(read_only=True)
    who = engine.resolve(person)
    rows = accounts_of(engine.store, who.id)
    n = _emit_rows(rows, as_json, as_csv, f"Accounts of {who.id}")
    if not n and not (as_json or as_csv):
        out.print("[yellow]No inventoried account belongs to this person; run `offboard inventory sync` first?[/]")


@inventory.command("orphans")
@click.option("--include-protected", is_flag=True, help="Also list protected accounts (break-glass, admins).")
@_format_options
@click.pass_obj
def orphans_command(app: App, include_protected: bool, as_json: bool, as_csv: bool) -> None:
    """Active accounts that belong to no active person."""
    from ..config._policy import Protection
    from ..inventory._inventory import orphans, people_index

    engine = app.engine(read_only=True)
    if not engine.config.people:
        click.echo("error: orphans need a people source: add `people:` to the configuration", err=True)
        sys.exit(EXIT_USAGE)
    protection = (
        None
        if include_protected
        else Protection.combine(engine.policies.get(engine.config.default_policy), engine.config.protected)
    )
    rows = orphans(engine.store, people_index(engine), protection)
    _emit_rows(rows, as_json, as_csv, "Orphaned accounts", (*COLUMNS, "why"))


@click.command("sweep")
@click.option("--dry-run", is_flag=True, help="Show who would be revoked; change nothing.")
@click.option("--approve", is_flag=True, help="Proceed although a guard (max_cases, max_percent) halts the sweep.")
@click.option(
    "--approver",
    "approvers",
    metavar="NAME",
    multiple=True,
    help="Who approves; recorded in the audit log. Required with --approve; once per approver "
    "when sweep.approvals asks for more than one.",
)
@click.option(
    "--allow-destructive",
    is_flag=True,
    help="Proceed although the plans hold steps offboard cannot undo (deletions); recorded in the audit log.",
)
@click.option("--no-sync", is_flag=True, help="Plan from the stored inventory without syncing it first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def sweep(
    app: App,
    dry_run: bool,
    approve: bool,
    approvers: tuple[str, ...],
    allow_destructive: bool,
    no_sync: bool,
    as_json: bool,
) -> None:
    """Revoke everyone past their end date who still has access."""
    from ..inventory._sweep import ApprovalRequired, plan_rows, run_sweep

    if approvers and not approve:
        raise click.UsageError("--approver is only meaningful with --approve")
    try:
        result = run_sweep(
            app.engine(needs_connectors=True),
            approve=approve,
            approver=list(approvers),
            dry_run=dry_run,
            sync=not no_sync,
            allow_destructive=allow_destructive,
        )
    except ApprovalRequired as exc:
        raise click.UsageError(str(exc)) from None
    if as_json:
        emit_json(result.to_dict())
    else:
        _print(result, plan_rows(result))
    if result.halted:
        click.echo(f"error: {result.message}", err=True)
        sys.exit(EXIT_INCOMPLETE)
    sys.exit(EXIT_OK if result.ok else EXIT_INCOMPLETE)


def _print(result: Any, rows: list[dict[str, Any]]) -> None:
    from ._cases import styled

    if result.sync is not None:
        failed = [s for s in result.sync.systems if not s.ok]
        for s in failed:
            out.print(
                f"[yellow]inventory sync of {escape(s.system)} failed, using its last inventory: "
                f"{escape(s.error or '')}[/]"
            )
    if rows and (result.dry_run or result.halted or not result.cases):
        table = Table(title="Past their end date, still holding access", title_justify="left")
        for column in ("person", "type", "end date", "accounts", "systems"):
            table.add_column(column)
        for row in rows:
            table.add_row(
                escape(row["person"]),
                row["type"],
                (row["end_date"] or "")[:10],
                str(row["accounts"]),
                ", ".join(row["systems"]),
            )
        out.print(table)
    if result.cases:
        table = Table(title="Sweep cases", title_justify="left")
        for column in ("case", "person", "status", "actions"):
            table.add_column(column)
        for case in result.cases:
            table.add_row(case.case_id, escape(case.person_id), styled(case.status.value), str(len(case.actions)))
        out.print(table)
    if result.eta is not None and result.eta.systems and (result.dry_run or result.halted or result.timing):
        from ._bulk import print_eta

        print_eta(result.eta, result.timing or None)
    for person, why in result.skipped:
        out.print(f"[dim]skipped {escape(person)}: {escape(why)}[/]")
    for person, system, why in result.uncorrelated:
        out.print(f"[yellow]{escape(person)}: not correlated in {escape(system)}: {escape(why)}[/]")
    if result.approved_by:
        out.print(f"Approved by {escape(result.approved_by)}: {escape('; '.join(result.reasons))}")
    if not result.halted:
        out.print(escape(result.message))


__all__ = ["inventory", "sweep"]
