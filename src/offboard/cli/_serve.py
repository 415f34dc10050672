"""``offboard serve`` (HR webhook intake over HTTP) and ``offboard events`` (what came in, and what became of it)."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..models import HREventStatus
from ._main import App, emit_json

out = Console(highlight=False)
STYLE = {
    "done": "green",
    "scheduled": "cyan",
    "accepted": "yellow",
    "opened": "yellow",
    "unresolved": "red",
    "failed": "red",
    "too_late": "red",
    "cancelled": "cyan",
    "superseded": "dim",
}


@click.command("serve")
@click.option(
    "--host", default=None, help="Address to bind (default: server.host, else 127.0.0.1; loopback only unless told)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: server.port, else 8080).")
@click.option("--json", "as_json", is_flag=True, help="Announce the address as one JSON line; logs as JSON lines.")
@click.pass_obj
def serve(app: App, host: str | None, port: int | None, as_json: bool) -> None:
    """Receive HR events over HTTP, run due work, and answer health and metrics."""
    import uvicorn

    from ..web._app import ServerSettings, create_app
    from ..web._headers import with_header_deadline

    settings = ServerSettings.from_config(app.config)  # config errors before anything listens
    engine = app.engine()
    asgi = create_app(engine)
    host = host or settings.host
    port = port or settings.port
    auditors = "; /audit/ for auditors" if settings.auditor_token else ""
    from ..config._logging import configure_logging

    configure_logging(app.verbose, json=True if as_json else None, stderr=True)  # a service logs to stderr
    if as_json:
        import json

        click.echo(json.dumps({"serving": f"http://{host}:{port}", "host": host, "port": port}))
    else:
        click.echo(
            f"offboard serving on http://{host}:{port} (POST /v1/events; /health, /ready, /metrics, /docs{auditors})",
            err=True,
        )
    uvicorn.run(
        asgi,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=settings.keep_alive_seconds,
        limit_concurrency=settings.max_connections,
        # uvicorn's h11 protocol (httptools would ignore the header-size limit) with a header deadline
        http=with_header_deadline(settings.header_timeout_seconds),
        h11_max_incomplete_event_size=settings.max_header_bytes,  # request line and headers
    )


@click.command("events")
@click.option("--unresolved", is_flag=True, help="Only events that named an unknown person or could not be processed.")
@click.option(
    "--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="How many, newest first."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def events(app: App, unresolved: bool, limit: int, as_json: bool) -> None:
    """List received HR events and what became of them."""
    from ..intake._intake import list_events

    rows = list_events(app.engine().store, unresolved=unresolved, limit=limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out.print("No unresolved HR events." if unresolved else "No HR events received yet.")
        return
    table = Table(title="Unresolved HR events" if unresolved else "HR events (newest first)", title_justify="left")
    for column in ("received", "event", "type", "person", "status", "case", "detail"):
        table.add_column(column, no_wrap=column in ("event", "status"))
    for row in rows:
        style = STYLE.get(row["status"], "default")
        when = row["due_at"] if row["status"] == HREventStatus.SCHEDULED else None
        detail = row["detail"] + (f" (due {when})" if when and when not in row["detail"] else "")
        table.add_row(
            row["received_at"] or "",
            escape(row["event"]),
            row["type"],
            escape(row["person"]),
            f"[{style}]{row['status']}[/]",
            row["case"] or "",
            escape(detail),
        )
    out.print(table)
