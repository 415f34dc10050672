"""A deadline for each request's line and headers: uvicorn's h11 protocol has none of its own.

A client that opens a connection and sends its headers a byte at a time (slowloris) would
otherwise hold a connection slot for ever; every byte resets uvicorn's keep-alive timer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config._logging import get_logger

__all__ = ["HeaderDeadlineProtocol", "with_header_deadline"]

log = get_logger("offboard.server")

_BODY = json.dumps(
    {"error": "request_timeout", "message": "the request line and headers did not arrive in time"}
).encode()
TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    + f"content-length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers take longer than ``header_timeout``."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        pending = bool(self.conn.trailing_data[0])
        if pending:  # a request had begun: tell the client why; an idle keep-alive just closes
            log.warning("request headers too slow", client=self.client[0] if self.client else None)
            self.transport.write(TIMEOUT_RESPONSE)
        self.transport.close()


def with_header_deadline(seconds: float) -> type[Any]:
    """The protocol class to pass to uvicorn as ``http=``, with its deadline set."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": float(seconds)})
