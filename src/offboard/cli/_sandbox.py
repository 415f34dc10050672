"""``offboard sandbox``: serve the simulated systems locally and print a config for them."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

__all__ = ["sandbox"]


@click.group()
def sandbox() -> None:
    """Simulated Entra ID, Google Workspace, Slack, GitHub and SCIM 2.0 on localhost."""


@sandbox.command()
@click.option(
    "--people", default=50, show_default=True, type=click.IntRange(0, 100_000), help="How many people the company has."
)
@click.option(
    "--latency",
    "latency",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Added latency per request, in ms.",
)
@click.option(
    "--jitter",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0),
    help="Random extra latency up to this many ms.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for the company and the faults.")
@click.option(
    "--port-base", type=click.IntRange(1, 65530), default=None, help="Serve on PORT..PORT+4 instead of free ports."
)
@click.option(
    "--contractors-past-end",
    type=click.IntRange(0),
    default=None,
    help="Contractors past their end date (default: a quarter).",
)
@click.option("--orphans", type=click.IntRange(0), default=3, show_default=True, help="Accounts that belong to nobody.")
@click.option(
    "--admins", type=click.IntRange(0), default=1, show_default=True, help="Protected break-glass admin accounts."
)
@click.option("--no-rate-limits", is_flag=True, help="Serve without the vendors' rate limits.")
@click.option(
    "--scim-profile",
    default="generic",
    show_default=True,
    help="Make the SCIM app behave as this application (atlassian, zoom, slack, ignores-active, ...).",
)
@click.option(
    "--config-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the config YAML here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the config as JSON instead of YAML.")
def up(
    people: int,
    latency: float,
    jitter: float,
    seed: int,
    port_base: int | None,
    contractors_past_end: int | None,
    orphans: int,
    admins: int,
    no_rate_limits: bool,
    scim_profile: str,
    config_out: Path | None,
    as_json: bool,
) -> None:
    """Serve every simulator until interrupted; print a ready-to-use offboard config."""
    import yaml

    from ..sandbox import Sandbox, make_company

    try:
        company = make_company(
            people, seed=seed, contractors_past_end=contractors_past_end, orphans=orphans, admins=admins
        )
        sb = Sandbox(
            company=company,
            seed=seed,
            latency_ms=latency,
            jitter_ms=jitter,
            port_base=port_base,
            knobs={"rate_limits": not no_rate_limits},
            scim_profile=scim_profile,
        )
        sb.start()
    except (ValueError, OSError, RuntimeError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        config = sb.config()
        text = json.dumps(config, indent=2) if as_json else yaml.safe_dump(config, sort_keys=False)
        if config_out is not None:
            config_out.write_text(text)
        click.echo(text)
        sys.stdout.flush()
        urls = ", ".join(f"{name} {sb.url(name)}" for name in sb.systems)
        click.echo(f"sandbox ready: {len(company.people)} people; {urls}; Ctrl-C to stop", err=True)
        stop.wait()
    finally:
        sb.stop()


if __name__ == "__main__":
    sandbox()
