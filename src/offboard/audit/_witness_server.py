"""``offboard witness serve``: a small HTTP witness (C2SP tlog-witness ``POST /add-checkpoint``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import NoteError
from ._witness import Witness, WitnessSigner, generate_witness_skey

__all__ = ["load_witness_key", "make_server"]

#: Requests larger than this are refused (a checkpoint and a 63-hash proof are a few KiB).
MAX_BODY = 64 * 1024


def load_witness_key(path: Path, name: str | None = None) -> WitnessSigner:
    """The witness key in ``path``, created (mode 0600) with ``name`` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        if not name:
            raise NoteError(f"{path} does not exist: give --name to create a witness key there")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generate_witness_skey(name) + "\n")
    try:
        return WitnessSigner(path.read_text())
    except OSError as exc:
        raise NoteError(f"cannot read the witness key {path}: {exc.strerror}") from None


def make_server(
    signer: WitnessSigner,
    state: Path,
    logs: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 0,
    log: Callable[[str], None] | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server for one witness; call ``serve_forever()`` on it."""
    witness = Witness(signer, state, logs)

    class Handler(BaseHTTPRequestHandler):
        server_version = "offboard-witness"

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            if self.path != "/add-checkpoint":
                self._answer(404, "text/plain", b"not found\n")
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                self._answer(411, "text/plain", b"Content-Length required\n")
                return
            if not 0 <= length <= MAX_BODY:
                self._answer(413, "text/plain", b"request too large\n")
                return
            answer = witness.add_checkpoint(self.rfile.read(length))
            self._answer(answer.status, answer.content_type, answer.body)

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server API
            if log is not None:
                log(format % args)

    return ThreadingHTTPServer((host, port), Handler)
