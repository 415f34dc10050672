"""``offboard worker``: run jobs from PostgreSQL (``execution: distributed``)."""

from __future__ import annotations

import sys
import threading

import click

from ._main import EXIT_USAGE, App


@click.command()
@click.option("--concurrency", default=4, show_default=True, help="Jobs this worker runs at once.")
@click.option(
    "--stalled-after",
    default=30.0,
    show_default=True,
    help="Seconds without a heartbeat before another worker's job is taken over.",
)
@click.option("--heartbeat", default=10.0, show_default=True, help="Seconds between this worker's heartbeats.")
@click.option("--json", "as_json", is_flag=True, help="Announce the worker as one JSON line; logs as JSON lines.")
@click.pass_obj
def worker(app: App, concurrency: int, stalled_after: float, heartbeat: float, as_json: bool) -> None:
    """Run offboard's jobs from PostgreSQL; start as many as you like, on any machines."""
    from ..engine._distributed import run_worker

    if app.config.execution != "distributed":
        click.echo(
            "error: `offboard worker` needs `execution: distributed` and a PostgreSQL `store:` in the configuration",
            err=True,
        )
        sys.exit(EXIT_USAGE)
    if stalled_after <= heartbeat:
        click.echo("error: --stalled-after must be longer than --heartbeat", err=True)
        sys.exit(EXIT_USAGE)
    engine = app.engine()
    lock = threading.Lock()

    def engine_factory():
        with lock:
            return engine

    from ..config._logging import configure_logging

    configure_logging(app.verbose, json=True if as_json else None, stderr=True)  # a service logs to stderr
    if as_json:
        import json

        click.echo(json.dumps({"worker": {"concurrency": concurrency, "store": engine.store.url}}))
    else:
        click.echo(f"offboard worker: concurrency {concurrency}, store {engine.store.url}", err=True)
    run_worker(engine_factory, concurrency=concurrency, stalled_after=stalled_after, heartbeat=heartbeat)
