"""Read-only auditor pages in ``offboard serve``: the period report, person pages, evidence bundles.

``GET /audit/?from=YYYY-MM-DD&to=YYYY-MM-DD&sla=24h`` is the report of ``offboard audit report``;
``/audit/report.csv`` its rows; ``/audit/people/{person}`` one person's cases and log entries;
``/audit/people/{person}/evidence.zip`` their evidence bundle. Every page needs
``Authorization: Bearer <token>`` where the token is ``server.auditor_token`` (a reference, and
never the webhook secret); without a configured token the pages are off (404). Only GET and
HEAD are answered, other methods get 405, and nothing here opens the log for writing.
"""

from __future__ import annotations

import hmac
import re
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..audit import AuditError, NoteError, TrustList, build_evidence, load_trust
from ..audit._cases import sla_seconds
from ..audit._log import TRUSTED_KEYS
from ..audit._reconcile import from_sources
from ..audit._report import AuditReport, Period, ReportError, build_report
from ..audit._report_csv import report_csv
from ..audit._report_html import Links, render_error, render_person, render_report, sla_text
from ..config._logging import get_logger
from ..config._secrets import Secret, resolve_reference
from ..errors import ConfigError, OffboardError, SecretError
from ..inventory._people import configured_sources
from ._limits import client_of, rate_limited, retry_after
from ._services import Services, services

__all__ = ["DEFAULT_DAYS", "Refused", "auditor_token", "auditor_trust", "refusal", "router"]

log = get_logger(__name__)

TRUST_SOURCE = "the log's own trusted-keys.txt (compare the key fingerprint with one obtained out of band)"
MIN_TOKEN_CHARS = 16
DEFAULT_DAYS = 30  # the period shown when none is chosen: the last 30 days, today included
READ = ["GET", "HEAD"]
WRITE = ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
}
REFUSALS = {
    401: {"description": "no or wrong Authorization: Bearer <auditor token>"},
    404: {"description": "auditor pages off (no server.auditor_token), or an unknown person"},
    400: {"description": "a bad date, period or deadline"},
    429: {"description": "too many requests, or too many wrong tokens, from this client; see Retry-After"},
    500: {"description": "the audit log does not verify (the message says where)"},
}


def auditor_token(settings: Any, webhook_secret: Secret | None) -> Secret | None:
    """The resolved ``server.auditor_token``; ConfigError (never showing the value) when unusable."""
    ref = getattr(settings, "auditor_token", None)
    if not ref:
        return None
    try:
        token = resolve_reference(ref)
    except SecretError as exc:
        raise ConfigError(f"server.auditor_token: {exc}") from None
    value = token.reveal()
    if len(value) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"server.auditor_token: the token is too short ({len(value)} characters; use at least "
            f"{MIN_TOKEN_CHARS} random ones, e.g. from `openssl rand -hex 32`)"
        )
    if webhook_secret is not None and hmac.compare_digest(value.encode(), webhook_secret.reveal().encode()):
        raise ConfigError("server.auditor_token: must not be the webhook secret; give auditors a token of their own")
    return token


def auditor_trust(settings: Any, config: Any) -> tuple[TrustList, str] | None:
    """The pinned trust list of ``server.auditor_trusted_keys`` and where it came from, or None for the log's own."""
    ref = getattr(settings, "auditor_trusted_keys", None)
    if not ref:
        return None
    path = Path(ref).expanduser()
    if not path.is_absolute() and getattr(config, "source", None):
        path = config.source.parent / path
    try:
        return load_trust(path), f"{path} (pinned: server.auditor_trusted_keys)"
    except NoteError as exc:
        raise ConfigError(f"server.auditor_trusted_keys: {exc}") from None


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _refusal(request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON problem (the server's refusal format), or a plain page for a browser."""
    headers = {**HEADERS, **(headers or {})}
    if _wants_html(request):
        title = {
            400: "Bad request",
            401: "Not authorized",
            404: "Not found",
            405: "Read-only",
            409: "Not sealed yet",
            429: "Too many requests",
            500: "The audit log does not verify",
        }.get(status, "Error")
        return HTMLResponse(render_error(title, message), status_code=status, headers=headers)
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _html(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers=HEADERS)


class Refused(Exception):
    """An auditor page's refusal, answered by :func:`refusal` as JSON or, for a browser, as a page."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


async def refusal(request: Request, exc: Exception) -> Response:
    """The app's exception handler for :class:`Refused`."""
    assert isinstance(exc, Refused)
    return _refusal(request, exc.status, exc.code, exc.message, exc.headers)


# -- who may read -------------------------------------------------------------------


async def authorized(request: Request, services: Annotated[Services, Depends(services)]) -> Services:
    """The app's services, once the request carries the auditor token (a dependency); Refused otherwise."""
    token = services.auditor_token
    if token is None:
        raise Refused(
            404,
            "auditor_pages_off",
            "the auditor pages are off: set server.auditor_token "
            "(env:NAME or file:PATH) in the configuration to turn them on",
        )
    client = client_of(request, services.settings.trusted_proxy_header)
    locked = services.auditor_failures.locked(client)
    if locked:  # even the right token waits: guessing must not learn anything during the lockout
        log.warning("auditor page refused", path=request.url.path, reason="too many wrong tokens", client=client)
        raise Refused(
            429,
            "too_many_failures",
            f"too many wrong auditor tokens from this client; retry after {retry_after(locked)} s",
            {"Retry-After": retry_after(locked)},
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given or not hmac.compare_digest(given.encode(), token.reveal().encode()):
        why = "wrong bearer token" if scheme.lower() == "bearer" and given else "no bearer token"
        services.auditor_failures.failed(client)
        log.warning("auditor page refused", path=request.url.path, reason=why, client=client)  # never the header
        raise Refused(
            401,
            "unauthorized",
            "the auditor pages need the header Authorization: Bearer <auditor token> (server.auditor_token)",
            {"WWW-Authenticate": 'Bearer realm="offboard audit"'},
        )
    return services


Auditor = Annotated[Services, Depends(authorized)]
router = APIRouter(dependencies=[Depends(rate_limited)])  # per client: server.client_rate_per_minute


def _read(path: str, **options: Any) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """A GET route (documented) that also answers HEAD (undocumented: one operation per page)."""

    def register(handler: Callable[..., Response]) -> Callable[..., Response]:
        router.get(path, **options)(handler)
        router.head(path, include_in_schema=False)(handler)
        return handler

    return register


# -- the pages ----------------------------------------------------------------------


@_read(
    "/audit/",
    summary="Auditors: the termination evidence report for a period (HTML)",
    response_class=HTMLResponse,
    responses=REFUSALS,
    tags=["auditors"],
)
def report_page(request: Request, services: Auditor) -> Response:
    built, period, sla = _period_report(request, services)
    query = urlencode({"from": str(period.start), "to": str(period.end), "sla": sla_text(sla)})
    links = Links(person=_person_href(sla), csv=f"/audit/report.csv?{query}", form="/audit/")
    return _html(render_report(built, links))


_read("/audit", include_in_schema=False)(report_page)


@_read(
    "/audit/report.csv",
    summary="Auditors: the report's rows as CSV",
    responses=REFUSALS,
    response_class=Response,
    tags=["auditors"],
)
def report_rows(request: Request, services: Auditor) -> Response:
    built, period, _ = _period_report(request, services)
    name = f"offboard-report-{period.start}-{period.end}.csv"
    return Response(
        report_csv(built),
        media_type="text/csv; charset=utf-8",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
    )


@_read(
    "/audit/people/{person:path}/evidence.zip",
    response_class=Response,
    responses=REFUSALS,
    summary="Auditors: a person's evidence bundle (zip)",
    tags=["auditors"],
)
def evidence(request: Request, person: str, services: Auditor) -> Response:
    sla = _sla(request)
    built = _person_report(services, person, sla, keep_entries=False)
    pid = built.people[0].id if built.people else person
    log_dir = _log_dir(services)
    try:
        with tempfile.TemporaryDirectory(prefix="offboard-evidence-") as tmp:
            out = Path(tmp) / "evidence.zip"
            keys = _trust(services)[0] or load_trust(log_dir / TRUSTED_KEYS)
            build_evidence(log_dir, pid, out, keys, sla_seconds=sla)
            data = out.read_bytes()
    except (AuditError, NoteError) as exc:
        raise Refused(409, "not_sealed", f"no evidence bundle: {exc}") from None
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", pid)[:80] or "person"
    return Response(
        data,
        media_type="application/zip",
        headers={**HEADERS, "Content-Disposition": f'attachment; filename="evidence-{name}.zip"'},
    )


@_read(
    "/audit/people/{person:path}",
    response_class=HTMLResponse,
    responses=REFUSALS,
    summary="Auditors: one person's cases, checklist and log entries (HTML)",
    tags=["auditors"],
)
def person_page(request: Request, person: str, services: Auditor) -> Response:
    sla = _sla(request)
    built = _person_report(services, person, sla, keep_entries=True)
    if not built.people:  # every case of theirs lies outside any period: cannot happen with Period()
        raise Refused(404, "not_found", f"no case in the audit log for person {person!r}")
    query = urlencode({"sla": sla_text(sla)})
    links = Links(
        person=_person_href(sla),
        evidence=lambda pid: f"/audit/people/{quote(pid, safe='')}/evidence.zip?{query}",
        report=f"/audit/?{query}",
    )
    return _html(render_person(built, built.people[0], links))


@router.api_route("/audit", methods=WRITE, include_in_schema=False)
@router.api_route("/audit/{rest:path}", methods=WRITE, include_in_schema=False)
def read_only(request: Request) -> Response:
    raise Refused(
        405,
        "method_not_allowed",
        f"the auditor pages are read-only: {request.method} is not allowed, only GET (and HEAD)",
        {"Allow": ", ".join(READ)},
    )


# -- building what the pages show ---------------------------------------------------


def _period_report(request: Request, services: Services) -> tuple[AuditReport, Period, int]:
    """The report for the period and deadline the query asks for."""
    try:
        period, sla = _period(request, services.clock), _sla_of(request)
    except ValueError as exc:
        raise Refused(400, "bad_request", str(exc)) from None
    hr, problem = _leavers(services)
    keys, source = _trust(services)
    try:
        built = build_report(
            _log_dir(services),
            keys,
            period=period,
            sla_seconds=sla,
            leavers=hr,
            now=services.clock(),
            trust_source=source,
        )
    except ReportError as exc:
        raise _failed(exc) from None
    if problem:
        built.warnings.append(problem)
    return built, period, sla


def _person_report(services: Services, person: str, sla: int, keep_entries: bool) -> AuditReport:
    """The report over all time for one person (their log entries too when ``keep_entries``)."""
    keys, source = _trust(services)
    try:
        return build_report(
            _log_dir(services),
            keys,
            period=Period(),
            sla_seconds=sla,
            people=[person],
            keep_entries=keep_entries,
            now=services.clock(),
            trust_source=source,
        )
    except ReportError as exc:
        raise _failed(exc) from None


def _failed(exc: ReportError) -> Refused:
    if exc.code == 1:
        return Refused(500, "log_does_not_verify", str(exc))
    if "no case in the audit log" in str(exc) or "no audit log" in str(exc):
        return Refused(404, "not_found", str(exc))
    return Refused(409, "nothing_to_report", str(exc))


def _log_dir(services: Services) -> Path:
    return Path(services.engine.data_dir) / "audit"


def _trust(services: Services) -> tuple[TrustList | None, str]:
    """The trust list the pages verify with, and what to call it in the report."""
    return services.auditor_trust or (None, TRUST_SOURCE)


def _sla_of(request: Request) -> int:
    text = request.query_params.get("sla") or "24h"
    try:
        return sla_seconds(text)
    except ValueError as exc:
        raise ValueError(f"sla: {exc}") from None


def _sla(request: Request) -> int:
    """The deadline the query asks for; Refused (400) when it is not a duration."""
    try:
        return _sla_of(request)
    except ValueError as exc:
        raise Refused(400, "bad_request", str(exc)) from None


def _period(request: Request, clock: Callable[[], datetime]) -> Period:
    q = request.query_params
    start, end = q.get("from"), q.get("to")
    if not start and not end:
        today = clock().date()
        return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)
    if not start or not end:
        raise ValueError("give both from and to (YYYY-MM-DD), or neither for the last 30 days")
    return Period.parse(start, end, ("from", "to"))


def _leavers(services: Services) -> tuple[Any, str | None]:
    try:
        return from_sources(configured_sources(services.engine.config)), None
    except OffboardError as exc:
        return None, f"the people sources could not be read, so there is no reconciliation: {exc}"


def _person_href(sla: int) -> Callable[[str], str]:
    return lambda pid: f"/audit/people/{quote(pid, safe='')}?{urlencode({'sla': sla_text(sla)})}"
