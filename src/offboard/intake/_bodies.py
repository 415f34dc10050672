"""A request body read within a size and a time limit: HR webhooks, task pages, Shared Signals routes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import ClientDisconnect, Request

__all__ = ["read_bounded"]


async def read_bounded(
    request: Request,
    limit: int,
    timeout: float,
    refuse: Callable[[int, str, str], Exception],
    *,
    what: str = "the body",
    disconnected: str | None = None,
) -> bytes:
    """The body, at most ``limit`` bytes and within ``timeout`` seconds; otherwise ``refuse(status, code,
    message)`` is raised (413, 408; 400 on a disconnect when ``disconnected`` names it, else it propagates)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise refuse(413, "body_too_large", f"{what} is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise refuse(413, "body_too_large", f"{what} is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise refuse(408, "request_timeout", f"{what} did not arrive within {timeout:g} s") from None
    except ClientDisconnect:
        if disconnected is None:
            raise
        raise refuse(400, "client_disconnected", disconnected) from None
    return b"".join(chunks)
