"""Helpers for the cloud connector tests: a WSGI fault gate, a loopback server, unique names."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest

from offboard import Person
from offboard.testing import ConnectorContract

_counter = itertools.count(1)


def unique(prefix: str = "p") -> str:
    """A short name unique within the test session."""
    return f"{prefix}{next(_counter)}x{uuid.uuid4().hex[:6]}"


class FaultGate:
    """WSGI middleware in front of a real server: injected statuses and acknowledged-but-dropped writes."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app
        self.status: int | None = None
        self.retry_after: float | None = None
        self.lie_for: set[str] = set()  # path fragments whose writes are acknowledged but not applied
        self.deny: dict[str, str] = {}  # method -> message for a 403
        # "[METHOD ]path fragment" -> the status answered instead of serving the request
        self.refuse: dict[str, int] = {}
        # SCIM /Bulk: operations whose path holds a fragment are answered with (status, scimType) inside the
        # bulk response, once each, and not passed on; the others go to the server in one bulk request
        self.bulk_faults: dict[str, tuple[int, str]] = {}
        self.seen: list[tuple[str, str]] = []  # (method, path) of every request

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        self.seen.append((method, path))
        refused = next((status for where, status in self.refuse.items() if _matches(where, method, path)), None)
        if refused is not None:
            body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(refused), "detail": "no"}
            start_response(f"{refused} Refused", [("Content-Type", "application/scim+json")])
            return [json.dumps(body).encode()]
        if method == "POST" and path.endswith("/Bulk") and self.bulk_faults:
            return self._bulk_with_faults(environ, start_response)
        if self.status is not None:
            headers = [("Content-Type", "application/scim+json")]
            if self.retry_after is not None:
                headers.append(("Retry-After", str(int(self.retry_after))))
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(self.status),
                "detail": "injected fault",
            }
            start_response(f"{self.status} Injected", headers)
            return [json.dumps(body).encode()]
        if method in self.deny:
            body = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "403",
                "detail": self.deny[method],
            }
            start_response("403 Forbidden", [("Content-Type", "application/scim+json")])
            return [json.dumps(body).encode()]
        if method in ("PATCH", "PUT", "DELETE") and any(f in path for f in self.lie_for):
            environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("204 No Content", [])
            return [b""]
        return self.app(environ, start_response)

    def _bulk_with_faults(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        """Answer the faulted operations of a /Bulk request here and the rest through the server, in order."""
        import io

        request = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        answers: list[Any] = []
        passed: list[dict[str, Any]] = []
        for operation in request.get("Operations") or []:
            fragment = next((f for f in self.bulk_faults if f in operation.get("path", "")), None)
            if fragment is None:
                answers.append(None)
                passed.append(operation)
                continue
            status, scim_type = self.bulk_faults.pop(fragment)
            error = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status)}
            answers.append(
                {
                    "method": operation["method"],
                    "status": str(status),
                    "response": error | ({"scimType": scim_type} if scim_type else {}),
                }
            )
        served: list[Any] = []
        if passed:
            body = json.dumps({**request, "Operations": passed}).encode()
            inner = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
            status_line: list[str] = []
            chunks = self.app(inner, lambda status, headers, exc_info=None: status_line.append(status))
            served = json.loads(b"".join(chunks)).get("Operations") or []
        results = iter(served)
        merged = [answer if answer is not None else next(results) for answer in answers]
        response = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"], "Operations": merged}
        start_response("200 OK", [("Content-Type", "application/scim+json")])
        return [json.dumps(response).encode()]

    @contextlib.contextmanager
    def fault(self, status: int, retry_after: float | None = None) -> Iterator[None]:
        self.status, self.retry_after = status, retry_after
        try:
            yield
        finally:
            self.status, self.retry_after = None, None


def _matches(where: str, method: str, path: str) -> bool:
    wanted, _, fragment = where.rpartition(" ")
    return (not wanted or wanted == method) and fragment in path


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass


@contextlib.contextmanager
def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` on a free loopback port in a thread; yields the base URL."""
    from scim2_server.testserver.cli import ThreadingWSGIServer

    server = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def make_person(email: str, employee_id: str | None = None, **kw: Any) -> Person:
    return Person(id=email, email=email, employee_id=employee_id, **kw)


def raw_client(base_url: str, token: str) -> httpx.Client:
    """An httpx client that is not the connector's: for seeding and independent reads."""
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, trust_env=False, timeout=10)


class SandboxContract(ConnectorContract):
    """The contract against the sandbox simulator of the test module's ``SYSTEM``.

    Subclasses set ``connector_class`` (and ``instance``) and provide ``target_state``.
    """

    connector_class: Any = None
    instance = "sandbox"

    @pytest.fixture
    def connector(self, sandbox_settings):
        connector = self.connector_class(self.instance, sandbox_settings)
        yield connector
        connector.close()

    @pytest.fixture
    def person(self, sandbox_people):
        return next(sandbox_people).person

    @pytest.fixture
    def fault(self, sandbox, request):
        return sandbox.sim(request.module.SYSTEM).force

    @pytest.fixture
    def lie(self, sandbox, request):
        return lambda: sandbox.sim(request.module.SYSTEM).knobs_set(lie_rate=1.0)

    @pytest.fixture
    def secret_values(self, sandbox_secrets):
        return sandbox_secrets
