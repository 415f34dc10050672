"""Administrative commands: connectors, policies, demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ._main import EXIT_OK, EXIT_USAGE, App, emit_json

out = Console(highlight=False)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def connectors(as_json: bool) -> None:
    """List installed connectors, their capabilities and which are reversible."""
    from ..plugins import connector_classes

    classes = connector_classes()
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "module": cls.__module__,
            "capabilities": sorted(k.value for k in cls.capabilities()),
            "reversible": sorted(k.value for k in cls.reversible()),
            "inventory": cls.can_list(),
        }
        for name, cls in sorted(classes.items())
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Connectors", title_justify="left")
    for column in ("name", "can do", "reversible", "inventory"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["name"],
            ", ".join(row["capabilities"]),
            ", ".join(row["reversible"]) or "-",
            "yes" if row["inventory"] else "no",
        )
    out.print(table if rows else "No connectors installed.")


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
