"""Administrative commands: connectors, policies, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ._main import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, App, emit_json

out = Console(highlight=False)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def connectors(ctx: click.Context, as_json: bool) -> None:
    """List installed connectors, their capabilities, which are reversible and which destructive.

    \b
    offboard connectors probe NAME   does deactivation really take effect in NAME?
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..plugins import connector_classes

    classes = connector_classes()
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "module": cls.__module__,
            "capabilities": sorted(k.value for k in cls.capabilities()),
            "reversible": sorted(k.value for k in cls.reversible()),
            "destructive": sorted(k.value for k in cls.destructive()),
            "inventory": cls.can_list(),
        }
        for name, cls in sorted(classes.items())
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Connectors", title_justify="left")
    for column in ("name", "can do", "reversible", "destructive", "inventory"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["capabilities"]),
            ", ".join(row["reversible"]) or "-",
            ", ".join(row["destructive"]) or "-",
            "yes" if row["inventory"] else "no",
        )
    out.print(table if rows else "No connectors installed.")


@connectors.command("probe")
@click.argument("name")
@click.option("--user", metavar="ACCOUNT", help="An existing test account to deactivate and re-enable.")
@click.option("--keep", is_flag=True, help="Keep the test account the probe created (default: delete it).")
@click.option("--conformance", is_flag=True, help="Also run scim2-tester's RFC 7644 checks (SCIM; creates users).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def probe(app: App, name: str, user: str | None, keep: bool, conformance: bool, as_json: bool) -> None:
    """Deactivate a test account in connector NAME and read it back: does active:false take effect?

    Exit 0 when it does, 3 when the system accepted the deactivation and the account is still
    active (or the probe could not run), 2 for a usage error.
    """
    from ..engine._probe import probe as run_probe

    result = run_probe(app.engine(needs_connectors=True), name, user=user, keep=keep, conformance=conformance)
    if as_json:
        emit_json(result.to_dict())
    else:
        style = {"effective": "green", "ineffective": "red"}.get(result.verdict, "yellow")
        out.print(f"[{style}]{result.verdict}[/] {escape(name)}: {escape(result.detail)}")
        for check in result.checks:
            mark = "[green]ok[/]" if check["ok"] else "[red]still active[/]"
            out.print(f"  {mark} {escape(check['check'])}: {escape(check['detail'])}")
        for item in result.conformance:
            out.print(f"  conformance {escape(item['status'])}: {escape(item['check'])} {escape(item['reason'])}")
        if result.cleanup:
            out.print(f"  [dim]{escape(result.cleanup)}[/]")
    sys.exit(EXIT_OK if result.ok else EXIT_INCOMPLETE)


@click.group()
def policies() -> None:
    """Inspect and validate policies."""


@policies.command("validate")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate policy FILES (default: every bundled and configured policy)."""
    from ..config._policy import load_policy, policy_files
    from ..errors import ConfigError

    paths = list(files) or policy_files()
    results = []
    for path in paths:
        try:
            policy = load_policy(path)
            results.append({"file": str(path), "ok": True, "name": policy.name})
        except ConfigError as exc:
            results.append({"file": str(path), "ok": False, "error": str(exc)})
    if as_json:
        emit_json(results)
    else:
        for r in results:
            if r["ok"]:
                out.print(f"[green]ok[/] {r['file']} ({r['name']})")
            else:
                click.echo(f"error: {r['error']}", err=True)
    sys.exit(EXIT_OK if all(r["ok"] for r in results) else EXIT_USAGE)


@policies.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_policies(app: App, as_json: bool) -> None:
    """List the policies in effect."""
    from ..config._policy import load_policies

    base = app.config.source.parent if app.config.source else None
    found = sorted(load_policies(app.config.policies, base).items())
    if as_json:
        emit_json([policy.model_dump(mode="json") for _, policy in found])
        return
    for name, policy in found:
        out.print(f"[bold]{name}[/]: {', '.join(k.value for k in policy.actions)} ({', '.join(policy.person_types)})")


@click.command()
@click.option("--people", default=25, show_default=True, help="Size of the simulated company.")
@click.option("--latency", default=40, show_default=True, help="Simulated latency per request, ms.")
@click.option("--seed", default=7, show_default=True)
@click.option("--yes", is_flag=True, hidden=True)
@click.option("--json", "as_json", is_flag=True, help="Print the case as JSON instead of tables.")
@click.pass_obj
def demo(app: App, people: int, latency: int, seed: int, yes: bool, as_json: bool) -> None:
    """Revoke a departing person across a simulated company, end to end."""
    try:
        from ._demo import run_demo
    except ImportError as exc:
        click.echo(f"error: the demo needs the sandbox, which this build lacks ({exc})", err=True)
        sys.exit(EXIT_USAGE)
    sys.exit(run_demo(people=people, latency=latency, seed=seed, as_json=as_json))
