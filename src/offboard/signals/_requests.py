"""Reading stream-management and poll requests: bearer tokens, bounded JSON bodies, typed fields.

Every problem raises :class:`Refusal` naming the field; the routes answer it as a 4xx and change
nothing. Management errors use offboard's ``{"error", "message"}`` body (SSF 1.0 defines only the
status codes); the RFC 8935/8936 endpoints use those RFCs' ``{"err", "description"}``.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from ..intake._bodies import read_bounded

__all__ = ["Refusal", "read_json", "bearer", "text", "string_list", "endpoint_url", "MAX_BODY"]

#: The largest management or poll request body read.
MAX_BODY = 64 * 1024


class Refusal(Exception):
    """A request refused: status, machine code, message for a person, extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def bearer(request: Request) -> str:
    """The bearer token of ``Authorization``; 401 when missing or not a bearer token."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal(
            401, "authentication_failed", "send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"}
        )
    return token.strip()


async def read_json(request: Request, *, required: bool = True, timeout: float = 10.0) -> dict[str, Any]:
    """The body as a JSON object (at most MAX_BODY bytes); 400/413 naming the problem."""
    body = await read_bounded(
        request,
        MAX_BODY,
        timeout,
        Refusal,
        disconnected="the client disconnected before the body was complete",
    )
    if not body.strip():
        if required:
            raise Refusal(400, "invalid_request", "the body is empty; send a JSON object")
        return {}
    try:
        value = json.loads(body)
    except RecursionError:
        raise Refusal(400, "invalid_request", "the body is JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise Refusal(400, "invalid_request", "the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise Refusal(400, "invalid_request", f"the body is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(value, dict):
        raise Refusal(400, "invalid_request", "the body must be a JSON object")
    return value


def text(body: dict[str, Any], name: str, *, required: bool = False, limit: int = 1000) -> str | None:
    """A string field; 400 naming it when of another type, missing (if required) or too long."""
    value = body.get(name)
    if value is None:
        if required:
            raise Refusal(400, "invalid_request", f"{name}: required")
        return None
    if not isinstance(value, str):
        raise Refusal(400, "invalid_request", f"{name}: must be a string")
    if len(value) > limit:
        raise Refusal(400, "invalid_request", f"{name}: longer than {limit} characters")
    return value


def string_list(body: dict[str, Any], name: str, *, limit: int = 100) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and len(v) <= 1000 for v in value):
        raise Refusal(400, "invalid_request", f"{name}: must be an array of strings")
    if len(value) > limit:
        raise Refusal(400, "invalid_request", f"{name}: more than {limit} entries")
    return list(value)


def endpoint_url(value: Any, where: str) -> str:
    """A push endpoint: https, or http to a loopback address (local tests and side-cars)."""
    if not isinstance(value, str) or not value:
        raise Refusal(400, "invalid_request", f"{where}: required for push delivery (a URL)")
    if len(value) > 2000:
        raise Refusal(400, "invalid_request", f"{where}: longer than 2000 characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise Refusal(400, "invalid_request", f"{where}: not a URL") from None
    if parts.scheme == "https" and host:
        return value
    if parts.scheme == "http" and _loopback(host):
        return value
    raise Refusal(400, "invalid_request", f"{where}: must be an https URL (http only to a loopback address)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
