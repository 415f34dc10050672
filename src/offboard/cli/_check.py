"""``offboard check PERSON``: what the person still holds, asked of every system, read-only."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._main import EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE, App, emit_json


@click.command()
@click.argument("person", required=False)
@click.option("--since", help="Instead of PERSON: everyone with a case opened within this long (e.g. 30d).")
@click.option("--policy", help="Policy name (default: by person type, or the case's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check(app: App, person: str | None, since: str | None, policy: str | None, as_json: bool) -> None:
    """Ask every enabled system, read-only, what PERSON still holds that the policy removes.

    Exits 0 when nothing is left, 3 when something is (one line each) or a system could not be searched.
    """
    from ..config._durations import parse_duration
    from ..engine._check import recent_leavers, residual

    engine = app.engine(needs_connectors=True, read_only=True)
    if (person is None) == (since is None):
        click.echo("error: give PERSON or --since DURATION (not both)", err=True)
        sys.exit(EXIT_USAGE)
    targets: list[tuple[Any, Any]] = []
    if person is not None:
        who = engine.resolve(person)
        targets.append((who, engine.policy_for(who, policy)))
    else:
        try:
            window = parse_duration(str(since))
        except ValueError as exc:
            click.echo(f"error: --since: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        targets = recent_leavers(engine, window, policy)
    reports = [residual(engine, who, chosen) for who, chosen in targets]
    if as_json:
        emit_json(reports[0].to_dict() if person is not None else [r.to_dict() for r in reports])
    else:
        for report in reports:  # one unwrapped line per leftover, for grep and scripts
            for leftover in report.leftovers:
                click.echo(f"left {report.person.id}: {leftover}")
            for system, error in report.errors.items():
                click.echo(f"not searched {report.person.id}: {system}: {error}")
            if report.clean:
                click.echo(f"nothing left {report.person.id} ({', '.join(report.checked)})")
        if since is not None and not reports:
            click.echo(f"No case opened within {since}.")
    sys.exit(EXIT_OK if all(r.clean for r in reports) else EXIT_INCOMPLETE)
