"""Shared HTTP plumbing for the bundled connectors: status codes and headers to ``offboard.errors``."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from offboard.errors import (
    AuthError,
    ConnectorError,
    NotFound,
    PermanentError,
    PermissionDenied,
    RateLimited,
    TransientError,
)

if TYPE_CHECKING:  # httpx is imported on first use: `offboard --help` must start fast
    import httpx

__all__ = [
    "IDEMPOTENT_METHODS",
    "retry_after",
    "error_for",
    "raise_for_status",
    "send",
    "make_client",
    "short",
    "escape_filter",
    "is_loopback",
    "mapped",
]


#: Methods a repeat of which leaves the system as one request would (RFC 9110 9.2.2): the engine may
#: send such a request again on its own (``Connector.request``). A PATCH or POST that sets a state is
#: marked idempotent at its call site.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``x-ratelimit-reset`` (epoch)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, when.timestamp() - now())
    reset = lowered.get("x-ratelimit-reset")
    if reset and lowered.get("x-ratelimit-remaining", "0").strip() == "0":
        try:
            return max(0.0, float(reset) - now())
        except ValueError:
            return None
    return None


def short(text: str, limit: int = 300) -> str:
    """One line of at most ``limit`` characters, for error messages."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_for(
    status: int,
    headers: Mapping[str, str],
    message: str,
    *,
    system: str,
    what: str,
    permissions: tuple[str, ...] = (),
) -> ConnectorError:
    """The offboard error for an HTTP answer ``status`` to the request described by ``what``."""
    message = short(message) or f"HTTP {status}"
    text = f"{what}: HTTP {status}: {message}"
    if status == 429:
        return RateLimited(text, retry_after=retry_after(headers), system=system, status=status)
    if status == 401:
        return AuthError(f"{what}: credentials rejected (HTTP 401): {message}", system=system, status=status)
    if status == 403:
        if permissions:
            need = ", ".join(permissions)
            return PermissionDenied(
                f"{what}: missing permission {need} (HTTP 403): {message}",
                permissions=permissions,
                system=system,
                status=status,
            )
        return PermissionDenied(text, system=system, status=status)
    if status == 404:
        return NotFound(text, system=system, status=status)
    if status in (408,) or status >= 500 and status != 501:  # 501: the server does not do it (RFC 9110 15.6.2)
        return TransientError(text, system=system, status=status)
    return PermanentError(text, system=system, status=status)


def raise_pending(retry: dict[int, ConnectorError], pending: list[int]) -> None:
    """After one batch request: keep pending only the items whose error may pass (``retry``, by item index)
    and raise the first of them, an ``AuthError`` first (it is final; the rest would be retried in vain).
    When some items got through, a ``TransientError`` is marked ``partial``: only the rest is sent again."""
    progress = len(retry) < len(pending)
    pending[:] = sorted(retry)
    if pending:
        first = next((e for e in retry.values() if isinstance(e, AuthError)), retry[pending[0]])
        if progress and isinstance(first, TransientError):
            first.partial = True
        raise first


def _message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, ValueError):
        return response.text
    if isinstance(body, dict):
        for key in ("detail", "message", "error_description", "error"):
            value = body.get(key)
            if isinstance(value, dict):  # Graph/Google: {"error": {"code", "message"}}
                return str(value.get("message") or value.get("code") or value)
            if value:
                return str(value)
        errors = body.get("Errors")  # SCIM 1.1
        if isinstance(errors, dict):
            return str(errors.get("description") or errors)
        if isinstance(errors, list) and errors:
            return str(errors[0].get("description") if isinstance(errors[0], dict) else errors[0])
    return response.text


def raise_for_status(
    response: httpx.Response, *, system: str, what: str, permissions: tuple[str, ...] = ()
) -> httpx.Response:
    """Return ``response`` if it is a success, else raise the matching offboard error."""
    if response.is_success:
        return response
    raise error_for(
        response.status_code, response.headers, _message(response), system=system, what=what, permissions=permissions
    )


def send(client: httpx.Client, method: str, url: str, *, system: str, what: str, **kwargs: Any) -> httpx.Response:
    """Send a request; network failures and timeouts become ``TransientError``."""
    import httpx

    try:
        return client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientError(f"{what}: timed out ({type(exc).__name__})", system=system) from None
    except httpx.TransportError as exc:
        from ._tls import tls_problem

        problem = tls_problem(exc, str(client.base_url), getattr(client, "ca_file", None))
        if problem is not None:  # a certificate does not mend itself: no retrying
            raise PermanentError(f"{what}: {problem}", system=system) from None
        raise TransientError(f"{what}: {type(exc).__name__}: {short(str(exc))}", system=system) from None


def make_client(
    base_url: str,
    *,
    token: str | None = None,
    timeout: float = 30.0,
    ca_file: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Client:
    """An httpx client for one system; proxy variables are ignored for loopback targets."""
    import httpx

    all_headers = {"User-Agent": "offboard", "Accept": "application/json"}
    all_headers.update(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    import ssl

    client = httpx.Client(
        base_url=base_url,
        headers=all_headers,
        timeout=timeout,
        verify=ssl.create_default_context(cafile=ca_file) if ca_file else True,
        trust_env=not is_loopback(base_url),
        follow_redirects=False,
    )
    client.ca_file = ca_file  # type: ignore[attr-defined]  # named by a certificate error
    return client


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (the sandbox, a local test server)."""
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def escape_filter(value: str) -> str:
    """Quote ``value`` for a SCIM filter string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mapped(person: Any, mapping: Mapping[str, str]) -> str | None:
    """The account key an explicit mapping gives for ``person`` (by id, email or alias)."""
    if not mapping:
        return None
    lowered = {k.lower(): v for k, v in mapping.items()}
    for key in (person.id, *person.emails, person.employee_id):
        if key and key.lower() in lowered:
            return lowered[key.lower()]
    return None
