"""The small ASGI core every simulator shares: routing, knobs, faults, limits and the request log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote

from ._knobs import FaultPlan, Knobs, Limit, Limiter, LogEntry, RequestLog

__all__ = ["Simulator", "Request", "Response", "HTTPError", "route", "json_response"]

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Request:
    """One HTTP request as a simulator handler sees it."""

    __slots__ = (
        "method",
        "path",
        "raw_path",
        "query_string",
        "headers",
        "body",
        "params",
        "lie",
        "batch",
        "_query",
        "_json",
    )

    def __init__(
        self, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes, raw_path: str = ""
    ):
        self.method = method
        self.path = path
        self.raw_path = raw_path or path
        self.query_string = query_string
        self.headers = headers
        self.body = body
        self.params: dict[str, str] = {}
        self.lie = False
        self.batch = ""
        self._query: dict[str, str] | None = None
        self._json: Any = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The JSON body, or raise HTTPError 400 through the simulator's error shape."""
        if self._json is None:
            if not self.body:
                return None
            try:
                self._json = json.loads(self.body)
            except (ValueError, UnicodeDecodeError):
                raise HTTPError(400, "the request body is not valid JSON", reason="invalid") from None
        return self._json

    def form(self) -> dict[str, str]:
        """Form fields from an urlencoded body merged over the query string (Slack style)."""
        data = dict(self.query)
        ctype = self.header("content-type")
        if self.body and "json" in ctype:
            body = self.json()
            if isinstance(body, dict):
                data.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()})
        elif self.body:
            data.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return data

    @property
    def write(self) -> bool:
        return self.method in _WRITES


class Response:
    """A status, headers and a body (bytes, or anything JSON-serialisable)."""

    __slots__ = ("status", "body", "headers", "content_type")

    def __init__(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ):
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.content_type = content_type

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body, separators=(",", ":")).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status, data, headers)


class HTTPError(Exception):
    """Raised by handlers; the simulator renders it in its vendor's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        reason: str = "",
        headers: dict[str, str] | None = None,
        response: Response | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.headers = headers or {}
        self.response = response


Handler = Callable[..., Awaitable[Response]]


def route(
    method: str,
    pattern: str,
    *,
    write: bool | None = None,
    limit: str | None = None,
    perm: str | tuple[str, ...] | None = None,
) -> Callable[[Handler], Handler]:
    """Mark a simulator method as the handler of ``method pattern`` (``{name}`` captures a segment).

    ``perm`` names the permission(s) (any of) the caller needs; see :meth:`Simulator.deny`.
    """

    def mark(fn: Handler) -> Handler:
        perms = (perm,) if isinstance(perm, str) else perm
        fn.__dict__.setdefault("_routes", []).append((method.upper(), pattern, write, limit))
        fn.__dict__.setdefault("_perms", {})[(method.upper(), pattern)] = perms
        return fn

    return mark


def _compile(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[a-zA-Z_]+\})", pattern)
    rx = "".join(f"(?P<{p[1:-1]}>[^/]+)" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(rx + "$")


class Simulator:
    """Base class of the simulated systems: an ASGI app plus inspection and knobs.

    Subclasses set ``system`` and ``default_limits``, declare handlers with
    :func:`route`, and may override the hooks ``authenticate``, ``throttle``,
    ``rate_limit``, ``error``, ``decorate`` and ``unavailable``.
    """

    system: ClassVar[str] = ""
    default_limits: ClassVar[dict[str, Limit]] = {}
    default_granted: ClassVar[frozenset[str]] = frozenset()
    scheme: ClassVar[str] = "http"
    #: Where the running sandbox keeps its certificate and secrets (set by the runner).
    data_dir: Path

    def __init__(
        self,
        company: Any,
        *,
        seed: int = 0,
        knobs: Knobs | None = None,
        limits: dict[str, Limit] | None = None,
        log_size: int = 200_000,
    ):
        self.company = company
        self.knobs = knobs or Knobs()
        self.limits = {**{k: Limit(v.count, v.per, v.burst) for k, v in self.default_limits.items()}, **(limits or {})}
        self.limiter = Limiter(self.limits, self.knobs)
        self.log = RequestLog(log_size)
        self.faults = FaultPlan(self.knobs, seed ^ zlib.crc32(self.system.encode()))
        self.base_url = ""
        self._forced: list[tuple[int, float | None, int | None]] = []
        self.granted: set[str] = set(self.default_granted)
        self._perms: dict[str, tuple[str, ...]] = {}
        self._routes: dict[str, list[tuple[re.Pattern[str], Handler, bool, str | None]]] = {}
        self._static: dict[tuple[str, str], tuple[Handler, bool, str | None]] = {}
        for klass in reversed(type(self).__mro__):
            for attr in vars(klass).values():
                for method, pattern, write, limit in getattr(attr, "_routes", ()):
                    handler = getattr(self, attr.__name__)
                    perms = attr.__dict__.get("_perms", {}).get((method, pattern))
                    if perms:
                        self._perms[attr.__name__] = perms
                    w = method in _WRITES if write is None else write
                    if "{" in pattern:
                        self._routes.setdefault(method, []).append((_compile(pattern), handler, w, limit))
                    else:
                        self._static[(method, pattern)] = (handler, w, limit)

    # ----- inspection -------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str]]:
        """Every (method, pattern) this simulator serves."""
        out: list[tuple[str, str]] = []
        for klass in type(self).__mro__:
            for attr in vars(klass).values():
                out.extend((m, p) for m, p, _, _ in getattr(attr, "_routes", ()))
        return sorted(set(out))

    def account(self, key: str) -> dict[str, Any] | None:
        """The current state of one account (by email, id or login), as a plain dict."""
        raise NotImplementedError

    def accounts(self) -> list[dict[str, Any]]:
        """Every account's current state."""
        raise NotImplementedError

    # ----- knobs for tests --------------------------------------------------------------------
    @contextlib.contextmanager
    def force(self, status: int, retry_after: float | None = None, count: int | None = None) -> Iterator[None]:
        """Answer the next requests (all, or ``count`` of them) with ``status`` in the vendor's shape."""
        entry = (status, retry_after, count)
        self._forced.append(entry)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                self._forced.remove(entry)

    def _take_forced(self, req: Request) -> tuple[int, float | None] | None:
        if not self._forced:
            return None
        i = len(self._forced) - 1
        status, retry_after, count = self._forced[i]
        if count is not None:
            if count <= 1:
                self._forced.pop(i)
            else:
                self._forced[i] = (status, retry_after, count - 1)
        return status, retry_after

    @contextlib.contextmanager
    def knobs_set(self, **changes: Any) -> Iterator[Knobs]:
        """Change knobs for the duration of a ``with`` block."""
        old = {k: getattr(self.knobs, k) for k in changes}
        self.knobs.update(**changes)
        try:
            yield self.knobs
        finally:
            self.knobs.update(**old)

    def deny(self, *permissions: str) -> None:
        """Withdraw permissions (Graph app roles, Google scopes, Slack/GitHub token scopes) from the caller."""
        self.granted.difference_update(permissions)

    def allow(self, *permissions: str) -> None:
        """Grant permissions back."""
        self.granted.update(permissions)

    def forbidden(self, req: Request, needed: tuple[str, ...]) -> Response:
        """The vendor's answer when the caller lacks every one of ``needed``."""
        return self.error(HTTPError(403, f"missing permission: {' or '.join(needed)}", reason="forbidden"))

    # ----- hooks ------------------------------------------------------------------------------
    def authenticate(self, req: Request) -> None:
        """Raise HTTPError 401 when the request carries no valid credentials."""

    def rate_limit(self, req: Request, limit: str | None) -> float:
        """Spend rate-limit tokens for ``req``; return 0 or the seconds to wait."""
        if limit is None:
            return 0.0
        return self.limiter.take(limit, self.client_key(req))

    def client_key(self, req: Request) -> str:
        return req.header("authorization")[-24:]

    def throttle(self, req: Request, retry_after: float, why: str) -> Response:
        """The vendor's rate-limit answer."""
        return Response(429, {"error": "rate limited"}, {"Retry-After": str(max(1, int(retry_after + 0.999)))})

    def render(self, req: Request, err: HTTPError) -> Response:
        """Render an HTTPError raised while serving ``req`` (defaults to :meth:`error`)."""
        return self.error(err)

    def error(self, err: HTTPError) -> Response:
        """Render an HTTPError in the vendor's error shape."""
        return Response(err.status, {"error": err.message}, err.headers)

    def unavailable(self, req: Request, status: int) -> Response:
        """The vendor's 5xx answer."""
        return self.error(HTTPError(status, "The service is temporarily unavailable.", reason="backendError"))

    def forced(self, req: Request, status: int, retry_after: float | None) -> Response:
        """The answer for a forced status (see :meth:`force`)."""
        if status == 429 or (retry_after is not None and status in (403, 503)):
            resp = self.throttle(req, retry_after if retry_after is not None else 1.0, "forced")
            resp.status = status
            if retry_after is None:
                resp.headers.pop("Retry-After", None)
            return resp
        if status >= 500:
            return self.unavailable(req, status)
        return self.error(HTTPError(status, f"forced status {status}", reason="forced"))

    def decorate(self, req: Request, resp: Response) -> None:
        """Add headers every response carries."""

    def not_found(self, req: Request) -> Response:
        return self.error(HTTPError(404, f"no route for {req.method} {req.path}", reason="notFound"))

    # ----- dispatch ---------------------------------------------------------------------------
    def match(self, method: str, path: str) -> tuple[Handler, bool, str | None, dict[str, str]] | None:
        hit = self._static.get((method, path))
        if hit is not None:
            return hit[0], hit[1], hit[2], {}
        for rx, handler, write, limit in self._routes.get(method, ()):
            m = rx.match(path)
            if m is not None:
                return handler, write, limit, {k: unquote(v) for k, v in m.groupdict().items()}
        return None

    async def dispatch(self, req: Request, fault: str | None = None) -> Response:
        """Serve one request; batch items pass no ``fault`` and draw their own."""
        found = self.match(req.method, req.path)
        try:
            if found is None:
                resp = self.not_found(req)
            else:
                handler, write, limit, req.params = found
                forced = self._take_forced(req)
                if forced is not None:
                    fault = "forced"
                    resp = self.forced(req, *forced)
                else:
                    if fault is None:
                        fault = self.faults.draw(write)
                        if fault in ("reset", "timeout"):
                            fault = "error"
                    resp = await self._serve(req, handler, write, limit, fault)
        except HTTPError as err:
            resp = err.response or self.render(req, err)
        except Exception as exc:  # a simulator bug: answer 500 and keep serving
            resp = self.unavailable(req, 500)
            resp.headers["X-Sandbox-Error"] = type(exc).__name__
        self.decorate(req, resp)
        self.log.add(
            LogEntry(
                time.time(),
                req.method,
                req.path,
                req.query_string,
                resp.status,
                fault or "",
                req.body if req.write else b"",
                req.batch,
            )
        )
        return resp

    async def _serve(self, req: Request, handler: Handler, write: bool, limit: str | None, fault: str) -> Response:
        if fault == "error":
            return self.unavailable(req, 503 if self.faults.rng.random() < 0.5 else 500)
        self.authenticate(req)
        needed = self._perms.get(getattr(handler, "__name__", ""))
        if needed and self.granted.isdisjoint(needed):
            return self.forbidden(req, needed)
        if fault == "storm":
            return self.throttle(req, self.faults.storm_wait(), "storm")
        wait = self.rate_limit(req, limit)
        if wait:
            return self.throttle(req, wait, "limit")
        req.lie = fault == "lie" and write
        return await handler(req)

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict]], send: Callable[[dict], Awaitable[None]]
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        raw = scope.get("raw_path") or scope["path"].encode()
        raw_path = raw.decode("latin-1").split("?", 1)[0]
        req = Request(scope["method"], scope["path"], scope["query_string"].decode("latin-1"), headers, body, raw_path)
        found = self.match(req.method, req.path)
        fault = self.faults.draw(bool(found and found[1])) if found is not None else ""
        delay = self.faults.jitter()
        if fault in ("reset", "timeout"):
            self.log.add(
                LogEntry(time.time(), req.method, req.path, req.query_string, 0, fault, body if req.write else b"", "")
            )
            if fault == "timeout":
                await asyncio.sleep(self.knobs.timeout_seconds)
            _abort(send)
            return
        if delay:
            await asyncio.sleep(delay)
        resp = await self.dispatch(req, fault)
        payload = resp.encoded()
        out = [(b"content-length", str(len(payload)).encode())]
        if payload or resp.status not in (204, 304):
            out.append((b"content-type", resp.content_type.encode()))
        out.extend((k.lower().encode(), str(v).encode()) for k, v in resp.headers.items())
        await send({"type": "http.response.start", "status": resp.status, "headers": out})
        await send({"type": "http.response.body", "body": payload})


def _abort(send: Callable[..., Any]) -> None:
    """Drop the client's connection with a TCP reset (uvicorn keeps the transport on the cycle)."""
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionResetError("sandbox: injected connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
