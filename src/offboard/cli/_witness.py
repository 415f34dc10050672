"""``offboard witness serve``: cosign audit-log checkpoints for logs you do not run (C2SP tlog-witness)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import NoteError

__all__ = ["witness"]


@click.group("witness")
def witness() -> None:
    """Run an independent witness for audit logs."""


@witness.command()
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The witness's private key file (created with --name when missing, mode 0600).",
)
@click.option("--name", help="The witness's key name when creating its key, e.g. witness.security.example.")
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the witness keeps the latest size and root it saw per log (JSON).",
)
@click.option(
    "--log", "logs", required=True, multiple=True, help="The verifier key (vkey) of a log to witness. Repeatable."
)
@click.option(
    "--listen", default="127.0.0.1:0", show_default=True, help="HOST:PORT to listen on (port 0: any free port)."
)
@click.option("--json", "as_json", is_flag=True, help="Announce the key and address as one JSON line.")
def serve(
    key_path: Path, name: str | None, state_path: Path, logs: tuple[str, ...], listen: str, as_json: bool
) -> None:
    """Serve POST /add-checkpoint: cosign only checkpoints consistent with the last one seen."""
    from ..audit._witness_server import load_witness_key, make_server

    host, _, port = listen.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        click.echo(f"error: --listen {listen!r} is not HOST:PORT (a port from 0 to 65535)", err=True)
        sys.exit(2)
    try:
        signer = load_witness_key(key_path, name)
        server = make_server(signer, state_path, logs, host or "127.0.0.1", int(port))
    except (NoteError, ValueError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    bound_host, bound_port = server.server_address[:2]
    url = f"http://{bound_host!s}:{bound_port}"
    if as_json:
        import json

        click.echo(
            json.dumps({"witness": signer.key.vkey, "serving": url, "host": str(bound_host), "port": bound_port})
        )
    else:
        click.echo(f"witness {signer.key.vkey} listening on {url}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
