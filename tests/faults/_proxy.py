"""A TCP proxy in front of a real LDAP server that cuts the connection of one write.

It reads the LDAP messages the client sends (BER: SEQUENCE { messageID, protocolOp }), in the clear
or, with ``tls`` (a certificate the client trusts), by terminating TLS on both sides. When a
modifyRequest ([APPLICATION 6]) carrying ``marker`` passes, it either drops it and closes the
connection (``after_apply=False``: the request never reaches the server) or forwards it, lets the
server apply it and answer, drops that answer and closes both sides (``after_apply=True``). Then it
refuses every new connection while ``down`` is set: the server looks dead to the client's retries.
"""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

__all__ = ["CuttingProxy"]

MODIFY_REQUEST = 0x66


def _length(data: bytes, at: int) -> tuple[int, int]:
    """A BER length at ``at``: (length, index after it)."""
    first = data[at]
    if first < 0x80:
        return first, at + 1
    n = first & 0x7F
    return int.from_bytes(data[at + 1 : at + 1 + n], "big"), at + 1 + n


def _operation(message: bytes) -> int | None:
    """The protocolOp tag of the LDAPMessage starting ``message``, or None when it is not one."""
    try:
        if message[0] != 0x30:
            return None
        _, at = _length(message, 1)
        if message[at] != 0x02:  # messageID INTEGER
            return None
        size, at = _length(message, at + 1)
        return message[at + size]
    except IndexError:
        return None


def _message_id(message: bytes) -> bytes:
    """The messageID INTEGER (tag, length and value) of the LDAPMessage starting ``message``."""
    _, at = _length(message, 1)
    size, end = _length(message, at + 1)
    return message[at : end + size]


def _modify_success(message: bytes) -> bytes:
    """A modifyResponse [APPLICATION 7] saying success (0) to the modifyRequest ``message``."""
    body = _message_id(message) + bytes([0x67, 0x07, 0x0A, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])
    return bytes([0x30, len(body)]) + body


class CuttingProxy:
    def __init__(
        self,
        host: str,
        port: int,
        marker: bytes,
        *,
        after_apply: bool = True,
        tls: tuple[Path, Path, Path] | None = None,  # (certificate, key, the server's CA)
    ):
        self.target = (host, port)
        self.marker = marker
        self.after_apply = after_apply
        self._serve: ssl.SSLContext | None = None
        self._upstream_tls: ssl.SSLContext | None = None
        if tls is not None:
            cert, key, ca = tls
            self._serve = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._serve.load_cert_chain(cert, key)
            self._upstream_tls = ssl.create_default_context(cafile=str(ca))
            self._upstream_tls.check_hostname = False  # the CA is the test's own; the address is loopback
        self.armed = True  # cut the next matching write
        self.lie = False  # instead: answer the next matching write "success" and never send it (a lying replica)
        self.down = False  # refuse connections (the server looks dead)
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'ldaps' if self._serve else 'ldap'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for s in self._sockets:
            _close(s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.down:
                _close(client)
                continue
            try:
                if self._serve is not None and self._upstream_tls is not None:
                    client = self._serve.wrap_socket(client, server_side=True)
                    server = self._upstream_tls.wrap_socket(socket.create_connection(self.target))
                else:
                    server = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            self._sockets += [client, server]
            cut = threading.Event()
            threading.Thread(target=self._upstream, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, cut), daemon=True).start()

    def _upstream(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                return
            if not data:
                _close(server)
                return
            if self.lie and _operation(data) == MODIFY_REQUEST and self.marker in data:
                self.lie = False
                try:
                    client.sendall(_modify_success(data))
                except OSError:
                    return
                continue
            if self.armed and _operation(data) == MODIFY_REQUEST and self.marker in data:
                self.armed = False
                if not self.after_apply:  # the request never reaches the server
                    self.down = True
                    self.cuts += 1
                    _close(client)
                    _close(server)
                    return
                cut.set()  # the server applies it; its answer never comes back
            try:
                server.sendall(data)
            except OSError:
                return

    def _downstream(self, server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                return
            if not data:
                _close(client)
                return
            if cut.is_set():  # the write's reply: drop it, the connection and, for a while, the server
                self.down = True
                self.cuts += 1
                _close(client)
                _close(server)
                return
            try:
                client.sendall(data)
            except OSError:
                return


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
