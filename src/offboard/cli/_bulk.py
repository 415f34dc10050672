"""``offboard revoke --from-file`` and ``offboard plan --from-file``: many people as one guarded bulk run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import ApprovalRequired, OffboardError
from ._main import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, App, emit_json

out = Console(highlight=False)


def bulk_revoke(
    app: App,
    person: str | None,
    from_file: Path | None,
    *,
    policy: str | None = None,
    reason: str = "",
    yes: bool = False,
    dry_run: bool = False,
    approve: bool = False,
    approver: str | None = None,
    allow_destructive: bool = False,
    as_json: bool = False,
    from_inventory: bool = False,
) -> None:
    """Plan (and unless ``dry_run``, run) everyone ``from_file`` lists; exits with the documented codes.
    ``from_inventory``: plan from the inventory, synced first unless ``dry_run`` (which writes nothing)."""
    from ..engine._bulk import read_people, revoke_many
    from ._cases import stdin_is_terminal

    if person is not None and from_file is not None:
        _usage("give either PERSON or --from-file, not both")
    if from_file is None:
        _usage("missing PERSON (or --from-file FILE for a list of people)")
    if (approve or approver or allow_destructive or from_inventory) and from_file is None:
        _usage("--approve, --approver, --allow-destructive and --from-inventory go with --from-file")
    if approver and not approve:
        _usage("--approver is only meaningful with --approve")
    assert from_file is not None
    try:
        people = read_people(from_file)
    except OffboardError as exc:
        _usage(str(exc))
    if not dry_run and not yes and not stdin_is_terminal():
        _usage("not a terminal; pass --yes to revoke without a prompt")
    engine = app.engine(needs_connectors=True, read_only=dry_run)

    def confirm(preview: Any) -> bool:
        if yes or not preview.plans:
            return True
        if not as_json:
            print_bulk(preview)
        return click.confirm(f"Revoke the access of {len(preview.plans)} people?", default=False)

    try:
        result = revoke_many(
            engine,
            people,
            policy=policy,
            approve=approve,
            approver=approver,
            allow_destructive=allow_destructive,
            dry_run=dry_run,
            reason=reason,
            confirm=confirm,
            from_inventory=from_inventory,
            sync=not dry_run,
        )
    except ApprovalRequired as exc:
        _usage(str(exc))
    if as_json:
        emit_json(result.to_dict())
    else:
        print_bulk(result)
    if result.halted:
        click.echo(f"error: {result.message}", err=True)
        sys.exit(EXIT_INCOMPLETE)
    if dry_run or result.cancelled:
        sys.exit(EXIT_INCOMPLETE if any(p.errors for p in result.plans) else EXIT_OK)
    sys.exit(EXIT_OK if result.ok else EXIT_INCOMPLETE)


def _usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def print_eta(eta: Any, measured: dict[str, Any] | None = None) -> None:
    """The ETA table: per system the calls, the binding limit, and when access is cut and cleanup ends."""
    from ..engine._eta import format_seconds

    table = Table(title="Bulk run: calls and ETA (critical-first)", title_justify="left")
    columns = ("system", "actions", "covered", "calls", "cutting access", "binding limit", "access cut", "cleanup")
    for column in columns:
        table.add_column(column)
    if measured:
        table.add_column("measured: cut / cleanup")
    for s in eta.systems:
        row = [
            escape(s.system),
            f"{s.actions:,}",
            f"{s.covered:,}",
            f"{s.calls:,}",
            f"{s.critical_calls:,}",
            escape(f"{s.binding} ({s.limit})" if s.binding != "none" else "none"),
            format_seconds(s.access_cut),
            format_seconds(s.cleanup_end),
        ]
        if measured:
            t = measured.get(s.system)
            row.append(
                f"{format_seconds(t.access_cut or 0)} / {format_seconds(t.cleanup_end or 0)}" if t is not None else "-"
            )
        table.add_row(*row)
    out.print(table)
    out.print(
        f"Everyone's access cut in about {format_seconds(eta.access_cut)}; "
        f"every action done in about {format_seconds(eta.cleanup_end)}."
    )


def print_bulk(result: Any) -> None:
    if result.plans and (result.dry_run or result.halted or not result.cases):
        table = Table(title="People to revoke", title_justify="left")
        for column in ("person", "accounts", "actions", "covered", "systems"):
            table.add_column(column)
        for plan in result.plans:
            table.add_row(
                escape(plan.person.id),
                str(len(plan.accounts)),
                str(len(plan.actions)),
                str(len(plan.covered)),
                ", ".join(sorted({a.account.system for a in plan.actions})),
            )
        out.print(table)
        covered = {(a.account.system, a.kind.value, by.value, url) for p in result.plans for a, by, url in p.covered}
        for system, kind, by, url in sorted(covered):
            out.print(f"[dim]{escape(system)}: {kind} is covered by {by} ({escape(url)})[/]")
    for plan in result.plans:
        for system, error in plan.errors.items():
            out.print(f"[yellow]{escape(plan.person.id)}: {escape(system)} could not be searched: {escape(error)}[/]")
    if result.eta is not None and result.eta.systems:
        print_eta(result.eta, result.timing or None)
    if result.cases:
        from ._cases import styled

        table = Table(title="Bulk cases", title_justify="left")
        for column in ("case", "person", "status", "actions"):
            table.add_column(column)
        for case in result.cases:
            table.add_row(case.case_id, escape(case.person_id), styled(case.status.value), str(len(case.actions)))
        out.print(table)
    for person, why in result.nothing:
        out.print(f"[dim]no case for {escape(person)}: {escape(why)}[/]")
    if result.approved_by:
        out.print(f"Approved by {escape(result.approved_by)}: {escape('; '.join(result.reasons))}")
    if not result.halted:
        out.print(escape(result.message))


__all__ = ["bulk_revoke", "print_bulk", "print_eta"]
