"""HR intake over HTTP: ``POST /v1/events`` (ours or a CloudEvent) and ``POST /v1/hooks/{source}``.

Every refusal is a 4xx ``{"error": code, "message": ...}`` that stores nothing, counted in
``offboard_hr_events_rejected`` and logged in one warning line; an accepted event is durable before the 202
goes out. Reading a request is one error boundary (:func:`_refusal`): whatever the headers and body
make a parser raise is a 4xx, so only the store failing can give a 5xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.requests import ClientDisconnect

from .. import plugins
from ..config._logging import get_logger
from ..intake._bodies import read_bounded
from ..intake._hr_adapters import HREvent, WebhookRejected, check_person_ref
from ..intake._intake import Intake
from ._events import JSON_TYPES, CloudEventIn, EventIn, Problem, Receipt, parse_event, verify_standard
from ._limits import rate_limited
from ._metrics import STANDARD_SOURCE, Metrics
from ._services import ServicesDep

__all__ = ["router"]

log = get_logger("offboard.web")

#: The metrics label of every ``/v1/hooks/<name>`` that is not configured (labels stay a fixed set).
UNKNOWN_SOURCE = "unknown"

router = APIRouter(dependencies=[Depends(rate_limited)])  # per client: server.client_rate_per_minute

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": text}
    for code, text in {
        400: "missing or malformed headers, a body that is not JSON, or a request that could not be read",
        401: "bad signature, or a timestamp outside the window",
        404: "unknown source",
        408: "the body did not arrive within server.read_timeout_seconds",
        409: "a webhook-id reused for a different body, or an event id reused for different content",
        413: "body over the size limit",
        415: "not a JSON content type",
        422: "not a valid event (the message names the field), or an unknown event type",
        429: "too many requests from this client (server.client_rate_per_minute); see Retry-After",
    }.items()
}


def _openapi_body(*models: type[BaseModel]) -> dict[str, Any]:
    """The documented request body: the body is read by hand, so FastAPI does not see the models."""
    content = {
        media: {"schema": {"$ref": f"#/components/schemas/{m.__name__}"}} for media, m in zip(JSON_TYPES, models)
    }
    return {"requestBody": {"required": True, "content": content}}


@router.post(
    "/v1/events",
    status_code=202,
    summary="Receive an HR event (ours or a CloudEvent), Standard Webhooks signed",
    response_model=Receipt,
    responses={200: {"model": Receipt, "description": "already received (duplicate)"}, **ERRORS},
    openapi_extra=_openapi_body(EventIn, CloudEventIn),
)
async def post_event(request: Request, services: ServicesDep) -> JSONResponse:
    settings = services.settings
    try:
        content_type = _content_type(request)
        body = await _read_body(request, settings.max_body_bytes, settings.read_timeout_seconds)
        now = services.clock()
        delivery = verify_standard(request.headers, body, services.signing_key, now, settings.tolerance_seconds)
        event = parse_event(_json(body), content_type)
    except Exception as exc:  # the error boundary: a request that cannot be read is refused, never a 5xx
        return _reject(services.metrics, STANDARD_SOURCE, _refusal(exc))
    result = await _store(services.intake, event, body, f"standard:{delivery}")
    return _answer(services.metrics, services.metrics.source(event.source), [event], [result])  # the sender's name


@router.post(
    "/v1/hooks/{source}",
    status_code=202,
    summary="Receive an HR system's own webhook (bamboohr, hibob, plugins)",
    response_model=Receipt,
    responses={200: {"model": Receipt, "description": "duplicate, or nothing to act on"}, **ERRORS},
)
async def post_hook(source: str, request: Request, services: ServicesDep) -> JSONResponse:
    if source not in services.sources:  # counted under one label, so probing cannot grow /metrics
        refused = WebhookRejected(404, "unknown_source", f"no HR source {source[:40]!r} is configured")
        return _reject(services.metrics, UNKNOWN_SOURCE, refused)
    try:
        body = await _read_body(request, services.settings.max_body_bytes, services.settings.read_timeout_seconds)
        hook_settings = {**services.sources[source], "now": services.clock()}
        events = plugins.get_plugin_manager().hook.parse_webhook(
            source=source, headers=dict(request.headers), body=body, settings=hook_settings
        )
        if events is None:
            raise WebhookRejected(404, "unknown_source", f"no installed adapter handles source {source!r}")
        for event in events:  # a plugin's adapter too: no invisible characters in a person reference
            check_person_ref(event.person, "person")
    except Exception as exc:  # the error boundary, as above
        return _reject(services.metrics, source, _refusal(exc))
    if not events:
        return JSONResponse({"status": "ignored", "events": []}, status_code=200)
    results = [await _store(services.intake, event, body, None) for event in events]
    return _answer(services.metrics, source, events, results)


def _content_type(request: Request) -> str:
    value = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if value not in JSON_TYPES:
        shown = value or "none"
        raise WebhookRejected(
            415,
            "unsupported_media_type",
            f"content type {shown} is not accepted; send application/json or application/cloudevents+json",
        )
    return value


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The body, at most ``limit`` bytes and within ``timeout`` seconds (413 or 408 otherwise)."""
    return await read_bounded(request, limit, timeout, WebhookRejected)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise WebhookRejected(400, "malformed_json", "the body is JSON nested too deeply") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = (
            f": {exc.msg} at line {exc.lineno}, column {exc.colno}"
            if isinstance(exc, json.JSONDecodeError)
            else ": not UTF-8"
        )
        raise WebhookRejected(400, "malformed_json", f"the body is not valid JSON{where}") from None


async def _store(intake: Intake, event: HREvent, body: bytes, delivery: str | None) -> Any:
    """Hand the event to the intake and wait until it is durable."""
    future = intake.submit(event, hashlib.sha256(body).hexdigest(), delivery)
    return await asyncio.wrap_future(future)


def _refusal(exc: Exception) -> WebhookRejected:
    """What to answer for an exception raised while reading a request (the error boundary)."""
    if isinstance(exc, WebhookRejected):
        return exc
    if isinstance(exc, ClientDisconnect):
        return WebhookRejected(400, "client_disconnected", "the client disconnected before the body was complete")
    if isinstance(exc, RecursionError):
        return WebhookRejected(400, "malformed_json", "the body is JSON nested too deeply")
    # A parser met input it did not expect (a plugin's adapter, a field of the wrong shape): the request's fault.
    return WebhookRejected(400, "unreadable_request", f"the request could not be read ({type(exc).__name__})")


def _reject(metrics: Metrics, source: str, exc: WebhookRejected) -> JSONResponse:
    """Count, log (one line, no headers or body) and answer a refusal."""
    metrics.rejected.labels(source, exc.code).inc()
    log.warning("webhook refused", source=source, status=exc.status, error=exc.code, detail=exc.message)
    return JSONResponse(exc.to_dict(), status_code=exc.status)


def _answer(metrics: Metrics, source: str, events: list[HREvent], results: list[Any]) -> JSONResponse:
    """202 when an event is new, 200 for duplicates, 409 for a replayed delivery or a reused event id."""
    for result in results:
        if result.outcome in ("replayed", "conflict"):
            metrics.rejected.labels(source, result.outcome).inc()
            message = (
                "this webhook-id was already received with a different body; send a new message with a new webhook-id"
                if result.outcome == "replayed"
                else f"event {result.key} was already received with different content"
            )
            return JSONResponse(
                {"error": result.outcome, "message": message, "event": result.key, "state": result.status},
                status_code=409,
            )
        metrics.received.labels(source, result.outcome).inc()
    fresh = any(r.outcome == "accepted" for r in results)
    return JSONResponse(
        {"status": "accepted" if fresh else "duplicate", "events": [e.key for e in events]},
        status_code=202 if fresh else 200,
    )
