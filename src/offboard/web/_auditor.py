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
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..audit import AuditError, NoteError, build_evidence, load_trust
from ..audit._cases import sla_seconds
from ..audit._log import TRUSTED_KEYS
from ..audit._reconcile import configured_sources, from_sources
from ..audit._report import Period, ReportError, build_report
from ..audit._report_csv import report_csv
from ..audit._report_html import Links, render_error, render_person, render_report, sla_text
from ..config._logging import get_logger
from ..config._secrets import Secret, resolve_reference
from ..errors import ConfigError, OffboardError, SecretError

__all__ = ["auditor_token", "auditor_trust", "mount", "DEFAULT_DAYS"]

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


def auditor_trust(settings: Any, config: Any) -> tuple[Any, str] | None:
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
            500: "The audit log does not verify",
        }.get(status, "Error")
        return HTMLResponse(render_error(title, message), status_code=status, headers=headers)
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _html(text: str) -> HTMLResponse:
    return HTMLResponse(text, headers=HEADERS)


def mount(app: FastAPI, state: dict[str, Any], clock: Callable[[], datetime]) -> None:
    """Add the ``/audit/`` pages to ``app``; ``state`` holds ``engine`` and ``auditor_token`` once set up."""

    def read(path: str, **options: Any) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
        """A GET route (documented) that also answers HEAD (undocumented: one operation per page)."""

        def register(handler: Callable[..., Response]) -> Callable[..., Response]:
            app.get(path, **options)(handler)
            app.head(path, include_in_schema=False)(handler)
            return handler

        return register

    def refused(request: Request) -> Response | None:
        token: Secret | None = state.get("auditor_token")
        if token is None:
            return _refusal(
                request,
                404,
                "auditor_pages_off",
                "the auditor pages are off: set server.auditor_token "
                "(env:NAME or file:PATH) in the configuration to turn them on",
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given or not hmac.compare_digest(given.encode(), token.reveal().encode()):
            why = "wrong bearer token" if scheme.lower() == "bearer" and given else "no bearer token"
            log.warning(
                "auditor page refused",
                path=request.url.path,
                reason=why,
                client=request.client.host if request.client else None,
            )  # never the header itself
            return _refusal(
                request,
                401,
                "unauthorized",
                "the auditor pages need the header Authorization: Bearer <auditor token> (server.auditor_token)",
                {"WWW-Authenticate": 'Bearer realm="offboard audit"'},
            )
        return None

    def log_dir() -> Path:
        return Path(state["engine"].data_dir) / "audit"

    def trust() -> tuple[Any, str]:
        """The trust list the pages verify with, and what to call it in the report."""
        return state.get("auditor_trust") or (None, TRUST_SOURCE)

    def sla_of(request: Request) -> int:
        text = request.query_params.get("sla") or "24h"
        try:
            return sla_seconds(text)
        except ValueError as exc:
            raise ValueError(f"sla: {exc}") from None

    def failed(request: Request, exc: ReportError) -> Response:
        if exc.code == 1:
            return _refusal(request, 500, "log_does_not_verify", str(exc))
        status = 404 if "no case in the audit log" in str(exc) or "no audit log" in str(exc) else 409
        return _refusal(request, status, "not_found" if status == 404 else "nothing_to_report", str(exc))

    def period_of(request: Request) -> Period:
        q = request.query_params
        start, end = q.get("from"), q.get("to")
        if not start and not end:
            today = clock().date()
            return Period(today - timedelta(days=DEFAULT_DAYS - 1), today)
        if not start or not end:
            raise ValueError("give both from and to (YYYY-MM-DD), or neither for the last 30 days")
        return Period.parse(start, end, ("from", "to"))

    def leavers() -> tuple[Any, str | None]:
        try:
            return from_sources(configured_sources(state["engine"].config)), None
        except OffboardError as exc:
            return None, f"the people sources could not be read, so there is no reconciliation: {exc}"

    def person_href(sla: int) -> Callable[[str], str]:
        return lambda pid: f"/audit/people/{quote(pid, safe='')}?{urlencode({'sla': sla_text(sla)})}"

    def the_report(request: Request) -> Any:
        """The built report with its period and deadline, or the refusal to send."""
        if (no := refused(request)) is not None:
            return no
        try:
            period, sla = period_of(request), sla_of(request)
        except ValueError as exc:
            return _refusal(request, 400, "bad_request", str(exc))
        hr, problem = leavers()
        try:
            keys, source = trust()
            built = build_report(
                log_dir(), keys, period=period, sla_seconds=sla, leavers=hr, now=clock(), trust_source=source
            )
        except ReportError as exc:
            return failed(request, exc)
        if problem:
            built.warnings.append(problem)
        return built, period, sla

    @read(
        "/audit/",
        summary="Auditors: the termination evidence report for a period (HTML)",
        response_class=HTMLResponse,
        responses=REFUSALS,
        tags=["auditors"],
    )
    def report_page(request: Request) -> Response:
        found = the_report(request)
        if isinstance(found, Response):
            return found
        built, period, sla = found
        query = urlencode({"from": str(period.start), "to": str(period.end), "sla": sla_text(sla)})
        links = Links(person=person_href(sla), csv=f"/audit/report.csv?{query}", form="/audit/")
        return _html(render_report(built, links))

    @read("/audit", include_in_schema=False)
    def report_root(request: Request) -> Response:
        return report_page(request)

    @read(
        "/audit/report.csv",
        summary="Auditors: the report's rows as CSV",
        responses=REFUSALS,
        response_class=Response,
        tags=["auditors"],
    )
    def report_rows(request: Request) -> Response:
        found = the_report(request)
        if isinstance(found, Response):
            return found
        built, period, _ = found
        name = f"offboard-report-{period.start}-{period.end}.csv"
        return Response(
            report_csv(built),
            media_type="text/csv; charset=utf-8",
            headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    def one_person(request: Request, person: str, keep: bool) -> Any:
        if (no := refused(request)) is not None:
            return no
        try:
            sla = sla_of(request)
        except ValueError as exc:
            return _refusal(request, 400, "bad_request", str(exc))
        try:
            keys, source = trust()
            built = build_report(
                log_dir(),
                keys,
                period=Period(),
                sla_seconds=sla,
                people=[person],
                keep_entries=keep,
                now=clock(),
                trust_source=source,
            )
        except ReportError as exc:
            return failed(request, exc)
        return built, sla

    @read(
        "/audit/people/{person:path}/evidence.zip",
        response_class=Response,
        responses=REFUSALS,
        summary="Auditors: a person's evidence bundle (zip)",
        tags=["auditors"],
    )
    def evidence(request: Request, person: str) -> Response:
        found = one_person(request, person, False)
        if isinstance(found, Response):
            return found
        built, sla = found
        pid = built.people[0].id if built.people else person
        try:
            with tempfile.TemporaryDirectory(prefix="offboard-evidence-") as tmp:
                out = Path(tmp) / "evidence.zip"
                build_evidence(log_dir(), pid, out, trust()[0] or load_trust(log_dir() / TRUSTED_KEYS), sla_seconds=sla)
                data = out.read_bytes()
        except (AuditError, NoteError) as exc:
            return _refusal(request, 409, "not_sealed", f"no evidence bundle: {exc}")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", pid)[:80] or "person"
        return Response(
            data,
            media_type="application/zip",
            headers={**HEADERS, "Content-Disposition": f'attachment; filename="evidence-{name}.zip"'},
        )

    @read(
        "/audit/people/{person:path}",
        response_class=HTMLResponse,
        responses=REFUSALS,
        summary="Auditors: one person's cases, checklist and log entries (HTML)",
        tags=["auditors"],
    )
    def person_page(request: Request, person: str) -> Response:
        found = one_person(request, person, True)
        if isinstance(found, Response):
            return found
        built, sla = found
        if not built.people:  # every case of theirs lies outside any period: cannot happen with Period()
            return _refusal(request, 404, "not_found", f"no case in the audit log for person {person!r}")
        query = urlencode({"sla": sla_text(sla)})
        links = Links(
            person=person_href(sla),
            evidence=lambda pid: f"/audit/people/{quote(pid, safe='')}/evidence.zip?{query}",
            report=f"/audit/?{query}",
        )
        return _html(render_person(built, built.people[0], links))

    @app.api_route("/audit", methods=WRITE, include_in_schema=False)
    @app.api_route("/audit/{rest:path}", methods=WRITE, include_in_schema=False)
    def read_only(request: Request) -> Response:
        return _refusal(
            request,
            405,
            "method_not_allowed",
            f"the auditor pages are read-only: {request.method} is not allowed, only GET (and HEAD)",
            {"Allow": ", ".join(READ)},
        )
