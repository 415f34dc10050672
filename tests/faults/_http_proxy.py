"""An HTTP proxy in front of a sandbox simulator that loses the reply to one write.

It reads each HTTP/1.1 request the client sends (in the clear, or with ``tls`` by terminating TLS
with the sandbox's own certificate), forwards it to the simulator and relays the answer, except for
the first ``cuts`` requests that ``cut(method, path, body)`` selects: those are forwarded, the
simulator applies them and answers, and the proxy drops that answer and closes the client's
connection. The client sees a connection closed without a response, as when a load balancer or the
network fails between a vendor applying a write and its reply arriving.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["LosingProxy"]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection", "te", "upgrade"}


class LosingProxy:
    def __init__(
        self,
        upstream: str,
        cut: Callable[[str, str, bytes], bool],
        *,
        cuts: int = 1,
        tls: tuple[Path, Path, Path] | None = None,
    ):
        parts = urlsplit(upstream)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or (443 if self._https else 80)
        self._cut, self._left = cut, cuts
        self.cuts = 0
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server_tls: ssl.SSLContext | None = None
        self._client_tls: ssl.SSLContext | None = None
        if tls is not None:
            cert, key, ca = tls
            self._server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._server_tls.load_cert_chain(cert, key)
            self._client_tls = ssl.create_default_context(cafile=str(ca))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._prefix = upstream[len(f"{parts.scheme}://{parts.netloc}") :]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, upstream_url: str) -> str:
        """``upstream_url`` (a URL on the simulator) as seen through the proxy."""
        parts = urlsplit(upstream_url)
        host = "localhost" if self._server_tls is not None else "127.0.0.1"
        return upstream_url.replace(f"{parts.scheme}://{parts.netloc}", f"{parts.scheme}://{host}:{self.port}", 1)

    def close(self) -> None:
        self._sock.close()

    # -- serving --------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _upstream(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=30, context=self._client_tls)
        return http.client.HTTPConnection(self._host, self._port, timeout=30)

    def _serve(self, client: socket.socket) -> None:
        try:
            if self._server_tls is not None:
                client = self._server_tls.wrap_socket(client, server_side=True)
            reader = client.makefile("rb")
            upstream = self._upstream()
            while True:
                request = _read_request(reader)
                if request is None:
                    return
                method, path, headers, body = request
                with self._lock:
                    self.seen.append((method, path))
                    cut = self._left > 0 and self._cut(method, path, body)
                    if cut:
                        self._left -= 1
                upstream.request(method, path, body=body or None, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                if cut:  # the simulator applied it and answered: the client never hears
                    with self._lock:
                        self.cuts += 1
                    return
                head = [f"HTTP/1.1 {response.status} {response.reason}"]
                head += [f"{k}: {v}" for k, v in response.getheaders() if k.lower() not in _HOP]
                head += [f"Content-Length: {len(payload)}", "Connection: keep-alive"]
                client.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        except (OSError, ssl.SSLError, http.client.HTTPException):
            return
        finally:
            try:
                client.close()
            except OSError:
                pass


def _read_request(reader) -> tuple[str, str, dict[str, str], bytes] | None:
    """One request from ``reader``: (method, path, headers, body), or None at the end of the stream."""
    line = reader.readline()
    while line in (b"\r\n", b"\n"):
        line = reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        line = reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip()] = value.strip()
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            if size == 0:
                reader.readline()
                break
            body += reader.read(size)
            reader.readline()
    else:
        body = reader.read(int(lowered.get("content-length") or 0))
    kept = {k: v for k, v in headers.items() if k.lower() not in _HOP}
    return method, path, kept, body
