"""The Google Workspace connector's transport: one httplib2 client per thread, googleapiclient services and
collections built once per thread, requests and batches sent under the engine's retry policy, Google's errors
mapped to offboard's. Mixed into ``GoogleWorkspaceConnector``, which provides the settings, the service account's
``_credentials``, ``_api`` (the API root) and ``_local`` (the thread's clients), and ``Connector``'s ``request``
and ``throttle``.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from offboard.errors import AuthError, ConnectorError, NotFound, RateLimited, TransientError

from ._http import IDEMPOTENT_METHODS, error_for, is_loopback, short

__all__ = ["GoogleTransport", "http_class", "client"]

_QUOTA_REASONS = {"userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded"}


@functools.cache
def http_class() -> type:
    """The connector's ``httplib2.Http``: it keeps the last answer's status and headers, and never sends on a
    kept-alive connection the server has closed.

    httplib2 reuses a connection however long it was idle; a server that closed it meanwhile (Google's front
    ends, like any server, end idle connections) makes the next request fail while it is being sent
    (``BrokenPipeError``: googleapis/google-api-python-client#218), and a batch sent again takes a quota token
    per inner request again. Before each request, a kept-alive connection whose socket reads as ready (the
    server's FIN or RST has arrived; nothing else is due on an idle HTTP/1.1 connection) is closed, and the
    request opens a new one: urllib3's ``is_connection_dropped`` check, with ``poll`` as urllib3 does
    (``select.select`` refuses a descriptor above 1023, which a process holding many connections reaches)."""
    import httplib2

    class RecordingHttp(httplib2.Http):
        last: tuple[int, dict[str, str]] = (0, {})

        def request(self, *args: Any, **kw: Any) -> Any:
            for conn in list(self.connections.values()):
                sock = getattr(conn, "sock", None)
                if sock is not None and _readable(sock):
                    conn.close()  # httplib2 connects again when the socket is gone
            response, content = super().request(*args, **kw)
            self.last = (int(response.status), {k: v for k, v in response.items() if isinstance(v, str)})
            return response, content

    return RecordingHttp


_DOCUMENTS: dict[tuple[str, str], dict[str, Any]] = {}
_DOCUMENTS_LOCK = threading.Lock()


def client(name: str, version: str, http: Any, endpoint: str) -> Any:
    """A googleapiclient client of API ``name`` ``version``, as ``build(..., static_discovery=True)`` makes it,
    from a discovery document parsed once per process.

    ``build`` parses the library's copy of the document each time: 2 ms and half a megabyte a client, and the
    handover builds a Gmail client per person (a bulk run of 300 people spent 8% of the engine's CPU there).
    The library completes a document's method descriptions in place the first time a collection is built from
    it; every collection is built once here, under a lock, so that threads sharing the document later only
    read it."""
    from googleapiclient.discovery import build_from_document

    key = (name, version)
    document = _DOCUMENTS.get(key)
    if document is None:
        with _DOCUMENTS_LOCK:
            document = _DOCUMENTS.get(key)
            if document is None:
                from googleapiclient.discovery_cache import get_static_doc

                text = get_static_doc(name, version)
                if text is None:
                    raise ConnectorError(f"googleapiclient has no discovery document for {name} {version}")
                document = json.loads(text)
                _complete(build_from_document(document, http=http, client_options={"api_endpoint": endpoint}))
                _DOCUMENTS[key] = document
    return build_from_document(document, http=http, client_options={"api_endpoint": endpoint})


def _complete(resource: Any) -> None:
    """Build every collection under ``resource`` once (each fills in its part of the shared document)."""
    for name in list(getattr(resource, "_dynamic_attrs", ())):
        member = getattr(resource, name)
        if getattr(member, "__is_resource__", False):
            _complete(member())


def _readable(sock: Any) -> bool:
    """Whether ``sock`` has something to read (or its peer closed it), without waiting."""
    import select

    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class GoogleTransport:
    """Requests to Google's APIs for the Google Workspace connector (see the module docstring)."""

    settings: Any
    instance: str
    _credentials: Any
    _api: str
    _local: threading.local

    if TYPE_CHECKING:  # provided by Connector

        def request(self, send: Callable[[], Any], lane: str | None = None, idempotent: bool = True) -> Any: ...

        def throttle(self, lane: str) -> None: ...

    def _http(self, credentials: Any = None) -> Any:
        import google_auth_httplib2
        import httplib2

        proxy = None if is_loopback(self._api) else httplib2.proxy_info_from_environment
        raw = http_class()(timeout=self.settings.timeout, ca_certs=self.settings.ca_file, proxy_info=proxy)
        return google_auth_httplib2.AuthorizedHttp(credentials or self._credentials, http=raw)

    def _token_error(self, exc: Exception, what: str) -> ConnectorError:
        """A refused token request: rate limit, outage, or credentials/delegation refused."""
        services = getattr(self._local, "services", None)
        status, headers = services["http"].http.last if services else (0, {})
        reason = _refresh_reason(exc)
        if status == 429:
            from ._http import retry_after

            return RateLimited(
                f"{what}: token endpoint rate limited",
                retry_after=retry_after(headers),
                system=self.instance,
                status=429,
            )
        if status >= 500 or getattr(exc, "retryable", False):
            return TransientError(f"{what}: token endpoint failed (HTTP {status})", system=self.instance, status=status)
        return AuthError(f"{what}: token refused: {reason}", system=self.instance, status=status or None)

    def _svc(self, api: str = "directory") -> Any:
        services = getattr(self._local, "services", None)
        if services is None:
            http = self._http()
            services = self._local.services = {
                "http": http,
                "directory": client("admin", "directory_v1", http, self._api),
                "transfer": client("admin", "datatransfer_v1", http, self._api),
            }
        return services[api]

    def _run(self, request: Any, what: str, scope: str, idempotent: bool | None = None) -> Any:
        """Execute one request; the engine retries it on its own when it is idempotent (by default a
        GET, PUT or DELETE, RFC 9110 9.2.2: Directory's updates are PUTs of the fields they set)."""
        if idempotent is None:
            idempotent = getattr(request, "method", "POST") in IDEMPOTENT_METHODS
        return self.request(lambda: self._execute(request, what, scope), idempotent=idempotent)

    def _execute(self, request: Any, what: str, scope: str, requests: int = 1) -> Any:
        """Send ``request`` once (``requests``: how many Google counts against the quota; a batch's inner ones)."""
        import google.auth.exceptions
        import httplib2
        from googleapiclient.errors import HttpError

        for _ in range(requests):
            self.throttle("queries")
        try:
            return request.execute()
        except HttpError as exc:
            raise self._error(exc, what, scope) from None
        except google.auth.exceptions.RefreshError as exc:
            raise self._token_error(exc, what) from None
        except google.auth.exceptions.TransportError as exc:
            raise TransientError(
                f"{what}: token endpoint unreachable: {type(exc).__name__}", system=self.instance
            ) from None
        except TimeoutError as exc:
            raise TransientError(f"{what}: timed out ({type(exc).__name__})", system=self.instance) from None
        except (OSError, httplib2.HttpLib2Error) as exc:
            raise TransientError(f"{what}: {type(exc).__name__}: {short(str(exc))}", system=self.instance) from None

    def _error(self, exc: Any, what: str, scope: str) -> ConnectorError:
        status = int(exc.resp.status)
        headers = {k: v for k, v in exc.resp.items() if isinstance(v, str)}
        reasons, message = _reasons(exc)
        if status == 403 and reasons & _QUOTA_REASONS:
            from ._http import retry_after

            return RateLimited(
                f"{what}: quota exceeded ({', '.join(sorted(reasons))})",
                retry_after=retry_after(headers),
                system=self.instance,
                status=403,
            )
        return error_for(status, headers, message, system=self.instance, what=what, permissions=(scope,))

    def _directory(self, resource: str, api: str = "directory") -> Any:
        """A collection of the thread's Directory (or Data Transfer) client: ``users``, ``members``..."""
        return self._collection(self._svc(api), resource)

    def _collection(self, service: Any, *path: str) -> Any:
        """``service.<path[0]>().<path[1]>()...``, built once per thread and client: each ``service.users()``
        makes googleapiclient build every method of the collection again from the discovery document, which
        was half of the engine process's CPU in a bulk run (``docs/performance.md``, "Mass terminations")."""
        cache = self._local.__dict__.setdefault("collections", {})
        key = (id(service), path)
        held = cache.get(key)
        if held is None or held[0] is not service:  # the client is kept with it: its id is never reused
            found = service
            for name in path:
                found = getattr(found, name)()
            held = cache[key] = (service, found)
        return held[1]

    def _pages(
        self, method: Callable[..., Any], key: str, what: str, scope: str, **params: Any
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = None
        while True:
            body = self._run(method(pageToken=token, **params) if token else method(**params), what, scope) or {}
            items += body.get(key) or []
            token = body.get("nextPageToken")
            if not token:
                return items

    def _batch(self, calls: list[tuple[Any, str]], scope: str, ok_missing: bool = True) -> list[Any]:
        """Run requests in one Google batch (up to 1000); returns their bodies, raising the first error.

        When every request is idempotent (reads, deletes whose repeat answers 404 and ``ok_missing``
        takes as done), the batch is one request to the engine and a retry sends again only the
        items that failed with a retryable error (a 5xx, a quota answer)."""
        from googleapiclient.errors import HttpError
        from googleapiclient.http import BatchHttpRequest

        results: list[Any] = [None] * len(calls)
        errors: list[ConnectorError | None] = [None] * len(calls)
        idempotent = all(getattr(request, "method", "POST") in IDEMPOTENT_METHODS for request, _ in calls)

        def send(pending: list[int]) -> None:
            if len(pending) == 1:  # one item left: sent on its own, it cannot fail twice (envelope and item)
                index = pending[0]
                try:
                    results[index] = self._execute(calls[index][0], calls[index][1], scope)
                except ConnectorError as err:
                    if err.retryable:
                        raise
                    if not (ok_missing and isinstance(err, NotFound)):
                        errors[index] = err
                pending.clear()
                return
            retry: dict[int, ConnectorError] = {}

            def done(request_id: str, response: Any, exception: Exception | None) -> None:
                index = int(request_id)
                if exception is None:
                    results[index] = response
                    return
                err = (
                    self._error(exception, calls[index][1], scope)
                    if isinstance(exception, HttpError)
                    else TransientError(f"{calls[index][1]}: {type(exception).__name__}", system=self.instance)
                )
                if ok_missing and isinstance(err, NotFound):
                    return
                if err.retryable:
                    retry[index] = err
                else:
                    errors[index] = err

            batch = BatchHttpRequest(callback=done, batch_uri=self._api + "batch")
            for index in pending:
                batch.add(calls[index][0], request_id=str(index))
            self._execute(batch, "batch request", scope, requests=len(pending))
            progress = len(retry) < len(pending)
            pending[:] = sorted(retry)
            if pending:
                first = retry[pending[0]]
                if progress and isinstance(first, TransientError):
                    first.partial = True  # only the items that failed are sent again
                raise first

        for start in range(0, len(calls), 1000):
            pending = list(range(start, min(start + 1000, len(calls))))
            self.request(functools.partial(send, pending), idempotent=idempotent)
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first
        return results


def _reasons(exc: Any) -> tuple[set[str], str]:
    try:
        body = json.loads(exc.content.decode("utf-8", "replace"))
        error = body.get("error") or {}
        reasons = {e.get("reason") for e in error.get("errors") or [] if isinstance(e, dict)}
        status = error.get("status")
        if status == "RESOURCE_EXHAUSTED":
            reasons.add("rateLimitExceeded")
        return {r for r in reasons if r}, str(error.get("message") or "")
    except (ValueError, AttributeError):
        return set(), short(
            exc.content.decode("utf-8", "replace") if isinstance(exc.content, bytes) else str(exc.content)
        )


def _refresh_reason(exc: Exception) -> str:
    """The OAuth error code only: the refresh error's args can carry the whole token response."""
    args = exc.args
    if len(args) > 1 and isinstance(args[1], dict):
        data = args[1]
        if isinstance(data.get("error"), dict):
            data = data["error"]
        code = data.get("error") or data.get("status") or data.get("code") or ""
        description = data.get("error_description") or data.get("message") or ""
        return short(f"{code}: {description}", 200)
    return short(type(exc).__name__, 200)
