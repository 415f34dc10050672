"""Case commands: plan, revoke, status, resume, undo."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..models import CaseStatus
from ._main import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, App, emit_json
from ._output import DiscoverySpinner, case_problems, plain, read_back, summary_line

out = Console(highlight=False)
STYLE = {
    "verified": "green",
    "complete": "green",
    "failed": "red",
    "unverified": "red",
    "incomplete": "red",
    "waiting": "yellow",
    "running": "yellow",
    "halted": "yellow",
    "skipped": "dim",
    "undone": "cyan",
    "cancelled": "cyan",
    "awaiting_tasks": "yellow",
}


def stdin_is_terminal() -> bool:
    """Whether a person can answer a prompt: stdin is open (``0<&-`` closes it) and a terminal."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # closed or detached
        return False


def styled(status: str) -> str:
    style = STYLE.get(status, "default")
    return f"[{style}]{escape(status)}[/]"


def plan_table(plan: Any) -> Table:
    table = Table(title=f"Plan for {plan.person.id} (policy {plan.policy.name})", title_justify="left")
    for column in ("system", "account", "actions"):
        table.add_column(column)
    by_account: dict[tuple[str, str], list[str]] = {}
    for action in plan.actions:
        kind = action.kind.value
        if plan.is_destructive(action):
            kind += " [red](destructive: cannot be undone)[/]"
        by_account.setdefault((action.account.system, action.account.name), []).append(kind)
    for (system, account), kinds in by_account.items():
        table.add_row(system, escape(account), ", ".join(kinds))
    for account, reason in plan.protected:
        table.add_row(account.system, escape(account.name), f"[yellow]protected, not touched: {escape(reason)}[/]")
    unsupported: dict[tuple[str, str], list[str]] = {}
    for account, kind in plan.unsupported:
        unsupported.setdefault((account.system, account.name), []).append(kind.value)
    for (system, account_name), kinds in unsupported.items():
        table.add_row(system, escape(account_name), f"[dim]not supported by this connector: {', '.join(kinds)}[/]")
    for system, error in plan.errors.items():
        table.add_row(system, "?", f"[red]{escape(plain(error))}[/]")
    return table


def print_plan(plan: Any) -> None:
    out.print(plan_table(plan))
    if plan.later:
        later = Counter(
            f"{a.kind.value} after {d.days}d" + (" (destructive: cannot be undone)" if plan.is_destructive(a) else "")
            for a, d in plan.later
        )
        out.print("Later: " + "; ".join(f"{k} ({n} accounts)" for k, n in later.items()))
    if plan.tasks:
        blocking = sum(t.blocking for t in plan.tasks)
        out.print(
            f"Checklist: {len(plan.tasks)} task(s) for people to do ({blocking} blocking completion): "
            + ", ".join(escape(t.id) for t in plan.tasks)
        )
    for note in getattr(plan, "reordered", ()):
        out.print(f"[dim]Order: {escape(note)}[/]")
    if plan.successor_note:
        out.print(f"[yellow]Handover: {escape(plan.successor_note)}[/]")
    if plan.no_successor:
        out.print(
            f"[yellow]No handover: {escape(plan.person.id)} has no manager and the policy's handover.to names "
            f"nobody[/]; left out: {escape('; '.join(plan.no_successor))}"
        )
    if plan.person.legal_hold:
        held = "; ".join(plan.held) or "none planned now"
        out.print(
            f"[yellow]Legal hold {escape(plan.person.legal_hold)}: no deletion runs while it holds[/] "
            f"(left out: {escape(held)}; deletion follow-ups refused)"
        )
    if plan.recent:
        out.print(f"[bold]Set up lately[/] (the {plan.policy.handover.recent_days} days before the end):")
        for item in plan.recent:
            where = f"{item.get('system')} {(item.get('account') or {}).get('name', '')}".strip()
            out.print(f"  {escape(where)}: {escape(item.get('detail') or item.get('error') or '')}")
    if not plan.actions:
        out.print("[yellow]Nothing to do.[/]")


def result_table(result: Any, accounts: bool = True) -> Table:
    """One row per action; ``accounts=False`` drops the account column (one person, one account per system)."""
    table = Table(title=f"Case {result.case_id}: {result.status.value}", title_justify="left")
    columns = (
        ("system", "account", "action", "result", "read back")
        if accounts
        else ("system", "action", "result", "read back")
    )
    for column in columns:
        table.add_column(column, no_wrap=column in ("action", "result"))
    for item in result.outcomes:
        back = plain(item["error"]) or read_back(item)
        cells = [item["system"], escape(item["account"]), item["kind"], styled(item["status"]), escape(back)]
        if not accounts:
            del cells[1]
        table.add_row(*cells)
    return table


def print_result(result: Any) -> None:
    """The result table, then each problem on one line, then one summary line."""
    out.print(result_table(result))
    problems = case_problems(result)
    if problems:
        out.print("[red]Problems:[/]")
        for line in problems:
            out.print(f"  {escape(line)}", soft_wrap=True)
    colour = "green" if result.ok else "red"
    out.print(f"[{colour}]{escape(summary_line(result))}[/]", soft_wrap=True)


class Progress:
    """Live per-system progress on a terminal; one line per action otherwise. ``start`` it with the plan's actions."""

    def __init__(self, live: bool):
        self.done: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.live = live
        self._lock = threading.Lock()
        self._progress: Any = None

    def start(self, plan_actions: list[Any]) -> None:
        """Show one bar per system, sized by the plan's actions on it."""
        totals = Counter(a.account.system for a in plan_actions)
        if not self.live or not totals:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as RichProgress

        self._progress = RichProgress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=out,
        )
        self._tasks = {s: self._progress.add_task(s, total=n, note="") for s, n in totals.items()}
        self._progress.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress:
            self._progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        with self._lock:
            system = event["system"]
            self.done[system] += 1
            if event["status"] != "verified":
                self.failed[system] += 1
            if self._progress:  # off a terminal the result table says it all, once
                note = f"[red]{self.failed[system]} not verified[/]" if self.failed[system] else ""
                self._progress.update(self._tasks[system], advance=1, note=note)


FROM_FILE = click.option(
    "--from-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A CSV or JSON list of people: one bulk run, guarded like a sweep, with its ETA (docs/sweeps.md).",
)

FROM_INVENTORY = click.option(
    "--from-inventory",
    is_flag=True,
    help="With --from-file: plan from the account inventory, not by discovering each person on every system "
    "(revoke syncs it first; plan and --dry-run use it as last synced).",
)


@click.command()
@click.argument("person", required=False)
@click.option("--policy", help="Policy name (default: by person type).")
@FROM_FILE
@FROM_INVENTORY
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def plan(
    app: App, person: str | None, policy: str | None, from_file: Path | None, from_inventory: bool, as_json: bool
) -> None:
    """Show what would happen for PERSON (or everyone in --from-file, with the ETA); writes nothing."""
    if from_file is not None or person is None or from_inventory:
        from ._bulk import bulk_revoke

        bulk_revoke(app, person, from_file, policy=policy, dry_run=True, as_json=as_json, from_inventory=from_inventory)
        return
    engine = app.engine(needs_connectors=True, read_only=True)
    with DiscoverySpinner(out, live=out.is_terminal and not as_json).attach(engine):
        result = engine.plan(person, policy)
    if as_json:
        emit_json(result.to_dict())
    else:
        print_plan(result)
    if result.errors:  # a system that could not be searched may hold accounts the plan does not show
        click.echo(
            f"error: {len(result.errors)} system(s) could not be searched: {', '.join(sorted(result.errors))}; "
            "the plan may be missing accounts",
            err=True,
        )
        sys.exit(EXIT_INCOMPLETE)


@click.command()
@click.argument("person", required=False)
@click.option("--policy", help="Policy name (default: by person type).")
@click.option("--reason", default="", help="Why; recorded in the case and the audit log.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show the plan and stop.")
@click.option("--again", is_flag=True, help="Revoke even if PERSON has a complete case within cases.again_within.")
@FROM_FILE
@FROM_INVENTORY
@click.option("--approve", is_flag=True, help="With --from-file: proceed although a guard halts the run.")
@click.option("--approver", metavar="NAME", help="Who approves; recorded in the audit log. Required with --approve.")
@click.option(
    "--allow-destructive",
    is_flag=True,
    help="With --from-file: proceed although the plans hold steps offboard cannot undo; recorded in the audit log.",
)
@click.option("--hold", "hold", metavar="NAME", help="Put the case under legal hold NAME: no deletion while it holds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def revoke(
    app: App,
    person: str | None,
    policy: str | None,
    reason: str,
    yes: bool,
    dry_run: bool,
    again: bool,
    from_file: Path | None,
    from_inventory: bool,
    approve: bool,
    approver: str | None,
    allow_destructive: bool,
    as_json: bool,
    hold: str | None = None,
) -> None:
    """Disable every account PERSON (or everyone in --from-file) holds, verify each by reading it back, and record it.

    Exits 0 without opening a case when there is nothing to do, and 2 when every account found is protected.
    """
    if from_file is not None or person is None or approve or approver or allow_destructive or from_inventory:
        from ._bulk import bulk_revoke

        if hold is not None:
            raise click.UsageError("--hold puts one PERSON's case under legal hold; it does not go with --from-file")

        bulk_revoke(
            app,
            person,
            from_file,
            policy=policy,
            reason=reason,
            yes=yes,
            dry_run=dry_run,
            approve=approve,
            approver=approver,
            allow_destructive=allow_destructive,
            as_json=as_json,
            from_inventory=from_inventory,
        )
        return
    code = EXIT_OK
    engine = app.engine(needs_connectors=True)
    spinner = DiscoverySpinner(out, live=out.is_terminal and not as_json).attach(engine)
    with spinner, Progress(live=out.is_terminal and not as_json) as progress:

        def confirm(the_plan: Any) -> bool:
            nonlocal code
            spinner.stop()
            if dry_run:
                code = EXIT_INCOMPLETE if the_plan.errors else EXIT_OK  # as `plan`: a system not searched
                if as_json:
                    emit_json({"dry_run": True, "plan": the_plan.to_dict()})
                else:
                    print_plan(the_plan)
                    out.print("Dry run: nothing was changed.")
                return False
            if not the_plan.actions and not the_plan.errors:  # no case: it would record work never done
                code = nothing_to_do(the_plan, as_json)
                return False
            if not again and not confirm_again(app, the_plan, yes, as_json):
                code = EXIT_USAGE
                return False
            if not as_json:
                print_plan(the_plan)
            if not yes:
                if not stdin_is_terminal():
                    click.echo("error: not a terminal; pass --yes to revoke without a prompt", err=True)
                    sys.exit(EXIT_USAGE)
                click.confirm(f"Revoke {len(the_plan.actions)} actions for {the_plan.person.id}?", abort=True)
            progress.start(the_plan.actions)
            return True

        if hold is not None and not hold.strip():
            click.echo("error: --hold needs a name (e.g. the matter it belongs to)", err=True)
            sys.exit(EXIT_USAGE)
        result = engine.revoke(
            person,
            policy=policy,
            trigger="cli",
            reason=reason,
            confirm=confirm,
            progress=None if as_json else progress,
            hold=hold,
        )
    if result is None:  # a dry run, nothing to do, or turned down
        sys.exit(code)
    if as_json:
        emit_json(result.to_dict())
    else:
        print_result(result)
        print_checklist(result)
    sys.exit(EXIT_OK if result.ok else EXIT_INCOMPLETE)


def nothing_to_do(plan: Any, as_json: bool) -> int:
    """Say why no case opens: 2 when every account found is protected (naming the protections), 3 when
    accounts were found that no connector can act on (naming them), else 0."""
    protections = [f"{a.system} {a.name}: {why}" for a, why in plan.protected]
    unsupported = [f"{a.system} {a.name}: {kind.value} is not supported" for a, kind in plan.unsupported]
    if as_json:
        emit_json(
            {
                "case": None,
                "person": plan.person.id,
                "nothing_to_do": True,
                "protected": protections,
                "unsupported": unsupported,
            }
        )
    elif unsupported:
        click.echo(f"error: offboard cannot act on the accounts of {plan.person.id}; no case opened:", err=True)
        for line in unsupported + protections:
            click.echo(f"  {line}", err=True)
    elif protections:
        who = plan.person.id
        click.echo(f"error: every account of {who} is protected; nothing was done, no case opened:", err=True)
        for line in protections:
            click.echo(f"  {line}", err=True)
    else:
        out.print(f"Nothing to do for {escape(plan.person.id)}: no account to act on; no case opened.")
    if unsupported:
        return EXIT_INCOMPLETE
    return EXIT_USAGE if protections else EXIT_OK


def confirm_again(app: App, plan: Any, yes: bool, as_json: bool) -> bool:
    """True unless PERSON has a recent complete case and the operator does not confirm (or pass --again)."""
    from ..engine._owed import recent_complete

    earlier = recent_complete(app.engine(), plan.person.id)
    if earlier is None:
        return True
    closed = earlier["closed_at"] or earlier["created_at"]
    what = f"{plan.person.id} already has a complete case {earlier['id']} (closed {closed:%Y-%m-%d %H:%M})"
    if yes or as_json or not stdin_is_terminal():
        click.echo(f"error: {what}; pass --again to open another one", err=True)
        return False
    return click.confirm(f"{what}. Revoke again?", default=False)


def print_checklist(result: Any) -> None:
    """The accounts' status and the checklist's, side by side."""
    checklist = result.checklist
    if not checklist or not checklist.get("total"):
        return
    line = (
        f"Accounts: {result.automated}. Checklist: {checklist['open']} open ({checklist['blocking_open']} blocking), "
        f"{checklist['done']} done, {checklist['skipped']} skipped"
    )
    out.print(line + (f"; see offboard tasks --case {result.case_id}" if checklist["open"] else ""))


@click.command()
@click.argument("case", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(app: App, case: str | None, as_json: bool) -> None:
    """Show CASE in full, or the latest cases. Exits 3 if the case is neither complete nor cancelled."""
    app.require_data()
    engine = app.engine(read_only=True)
    if case is None:
        rows = engine.latest_cases(limit=20)
        if as_json:
            emit_json(
                [
                    {k: r[k] for k in ("id", "person_id", "status", "trigger", "policy", "created_at", "closed_at")}
                    for r in rows
                ]
            )
            return
        table = Table(title="Latest cases", title_justify="left")
        for column in ("case", "person", "status", "trigger", "opened"):
            table.add_column(column, no_wrap=column in ("case", "status"))
        for r in rows:
            table.add_row(
                r["id"],
                escape(r["person_id"]),
                styled(r["status"]),
                r["trigger"],
                f"{r['created_at']:%Y-%m-%d %H:%M:%S}",
            )
        out.print(table if rows else "No cases yet.")
        from ._owed import owed_summary

        summary = owed_summary(engine)
        if summary:
            out.print(f"[red]{escape(summary)}[/]")
        return
    row = engine.find_case(case)
    if row is None:
        click.echo(f"error: no case matches {case!r}", err=True)
        sys.exit(EXIT_USAGE)
    from ..engine._hold import hold_of

    result = engine.result(row["id"])
    hold = hold_of(row)
    if as_json:
        emit_json({**result.to_dict(), "legal_hold": hold})
    else:
        print_result(result)
        print_checklist(result)
        if hold:
            out.print(f"[yellow]Legal hold: {escape(hold)}[/]: no deletion follow-up runs while it holds.")
    sys.exit(EXIT_OK if result.status in (CaseStatus.COMPLETE, CaseStatus.CANCELLED) else EXIT_INCOMPLETE)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def resume(app: App, as_json: bool) -> None:
    """Finish cases left running (after a crash) and run follow-ups that are due."""

    def left_alone(case_id: str, why: str) -> None:
        click.echo(f"left alone: case {case_id}: {why}", err=True)

    results = app.engine(needs_connectors=True).resume(left_alone=left_alone)
    if as_json:
        emit_json([r.to_dict() for r in results])
    else:
        for result in results:
            out.print(result_table(result))
        out.print(f"Resumed {len(results)} case(s)." if results else "Nothing to resume.")
    sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_INCOMPLETE)


@click.command()
@click.argument("case")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def undo(app: App, case: str, yes: bool, as_json: bool) -> None:
    """Restore what is reversible in CASE (rehire, mistaken termination); say what is not."""
    engine = app.engine(needs_connectors=True)
    row = engine.find_case(case)
    if row is None:
        click.echo(f"error: no case matches {case!r}", err=True)
        sys.exit(EXIT_USAGE)
    if not yes:
        if not stdin_is_terminal():
            click.echo("error: not a terminal; pass --yes to undo without a prompt", err=True)
            sys.exit(EXIT_USAGE)
        click.confirm(f"Undo case {row['id']} for {row['person_id']}?", abort=True)
    import getpass

    report = engine.undo(row["id"], actor=getpass.getuser())
    if as_json:
        emit_json({"case": row["id"], **report})
    else:
        for label in report["restored"]:
            kept = " (to its state before offboard's first write)" if label in report["original"] else ""
            out.print(f"[green]restored[/] {label}{kept}")
        for label in report["irreversible"]:
            if label in report.get("destructive", ()):
                out.print(f"[red]cannot be undone (destructive)[/] {escape(label)}")
            else:
                out.print(f"[yellow]cannot be undone[/] {escape(label)}")
        for label in report["failed"]:
            out.print(f"[red]failed[/] {label}")
    sys.exit(EXIT_OK if not report["failed"] else EXIT_INCOMPLETE)
