"""``offboard serve``: the HTTP side. HR webhook intake, health, readiness, metrics, auditor pages.

``POST /v1/events`` takes our JSON event or a CloudEvents 1.0 structured event, signed
with the Standard Webhooks scheme; ``POST /v1/hooks/{source}`` takes an HR system's own
webhook through its ``parse_webhook`` adapter. Every refusal is a 4xx with a JSON body
``{"error": code, "message": ...}`` and stores nothing; an accepted event is durable
before the 202 goes out, and the worker acts on it afterwards. The read-only ``/audit/``
pages for auditors live in ``offboard.web._auditor``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import plugins
from ..config._config import format_validation_error, time_of_day
from ..config._secrets import Secret, resolve_reference
from ..errors import ConfigError, SecretError
from ..intake._hr_adapters import BUNDLED_SOURCES, EVENT_TYPES, HREvent, WebhookRejected, check_source_settings
from ..intake._intake import Intake, check_effective
from ..state._store import utcnow
from ._auditor import auditor_token, auditor_trust
from ._auditor import mount as mount_auditor_pages

__all__ = ["create_app", "ServerSettings", "EventIn", "CloudEventIn"]

MiB = 1024 * 1024
CE_TYPES = {f"offboard.{t}": t for t in EVENT_TYPES}
JSON_TYPES = ("application/json", "application/cloudevents+json")


class ServerSettings(BaseModel):
    """The ``server:`` section of the configuration."""

    model_config = ConfigDict(extra="forbid")

    webhook_secret: str = Field(
        description="Standard Webhooks signing secret: env:NAME or file:PATH (value whsec_<base64>)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=MiB, ge=1024, le=64 * MiB)
    tolerance_seconds: int = Field(
        default=300, ge=1, le=3600, description="allowed distance of webhook-timestamp from now"
    )
    poll_seconds: float = Field(default=1.0, gt=0, le=60, description="how often the worker looks for due work")
    day_ends_at: str = Field(default="23:59:59", description="local time a date-only effective date takes effect")
    default_timezone: str = Field(
        default="UTC", description="zone for local times when neither the event nor the person has one"
    )
    sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="HR systems' own webhooks: bamboohr, hibob, or a plugin's"
    )
    auditor_token: str | None = Field(
        default=None,
        description="bearer token for the read-only /audit/ pages: env:NAME or file:PATH; unset = pages off",
    )
    auditor_trusted_keys: str | None = Field(
        default=None, description="pinned trust list the /audit/ pages verify with; default the log's own copy"
    )

    @field_validator("day_ends_at")
    @classmethod
    def _time(cls, value: str) -> str:
        return time_of_day(value)

    @field_validator("webhook_secret", "auditor_token")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("env:", "file:")):  # never echo it: it may be the secret itself
            raise ValueError("must be a reference (env:NAME or file:PATH), never the secret itself")
        return value

    @classmethod
    def from_config(cls, config: Any) -> ServerSettings:
        where = str(config.source or "config")
        if not config.server.get("webhook_secret"):
            raise ConfigError(
                f"{where}: server.webhook_secret: required (env:NAME or file:PATH holding a whsec_<base64> secret)"
            )
        try:
            return cls.model_validate(config.server)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, where, "server")) from None


def signing_key(secret: Secret | str, where: str = "server.webhook_secret") -> bytes:
    """The HMAC key of a Standard Webhooks secret ``whsec_<base64>`` (the prefix is optional)."""
    value = secret.reveal() if isinstance(secret, Secret) else secret
    value = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{where}: the secret is not base64 (expected whsec_ followed by base64, e.g. from "
            "`openssl rand -base64 32`)"
        ) from None
    if len(key) < 16:
        raise ConfigError(f"{where}: the secret is too short ({len(key)} bytes; use at least 24 random bytes)")
    return key


# -- the event schema -------------------------------------------------------------


class EventData(BaseModel):
    """What an event says about a person (the ``data`` of a CloudEvent)."""

    model_config = ConfigDict(extra="forbid")

    person: str = Field(min_length=1, max_length=320, description="email, employee id or people-source id")
    effective_at: str | None = Field(
        default=None, max_length=64, description="RFC 3339 time, local date-time, or date; absent = now"
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone for a local effective_at; default the person's"
    )
    reason: str = Field(default="", max_length=2000)


class EventIn(EventData):
    """Our own HR event."""

    id: str = Field(min_length=1, max_length=200, description="the sender's id for this event; redeliveries reuse it")
    source: str = Field(
        default="hr", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/-]+$", description="the sending system"
    )
    type: Literal["termination", "termination_cancelled", "end_date_changed"]


class CloudEventIn(BaseModel):
    """A CloudEvents 1.0 structured-mode event carrying :class:`EventData`."""

    model_config = ConfigDict(extra="allow")  # CloudEvents extension attributes are allowed

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=100)
    type: Literal["offboard.termination", "offboard.termination_cancelled", "offboard.end_date_changed"]
    time: str | None = None
    subject: str | None = None
    datacontenttype: Literal["application/json"] | None = None
    data: EventData


class Problem(BaseModel):
    error: str = Field(description="a short machine-readable code")
    message: str = Field(description="what is wrong, for a person")


class Receipt(BaseModel):
    status: str = Field(description="accepted | duplicate | ignored")
    events: list[str] = Field(description="the stored events' keys (source:id)")


def parse_event(data: Any, content_type: str) -> HREvent:
    """Our JSON or a CloudEvent -> HREvent; WebhookRejected (422) naming what is wrong."""
    if not isinstance(data, dict):
        raise WebhookRejected(422, "invalid_event", "the body must be a JSON object")
    cloud = content_type == "application/cloudevents+json" or "specversion" in data
    kind = data.get("type")
    known = list(CE_TYPES) if cloud else list(EVENT_TYPES)
    if not isinstance(kind, str) or kind not in known:
        shown = repr(kind) if kind is not None else "missing"
        raise WebhookRejected(422, "unknown_event_type", f"event type {shown} is not one of {', '.join(known)}")
    try:
        if cloud:
            ce = CloudEventIn.model_validate(data)
            body, event = (
                ce.data,
                HREvent(
                    ce.source,
                    ce.id,
                    CE_TYPES[ce.type],
                    ce.data.person,
                    ce.data.effective_at,
                    ce.data.timezone,
                    ce.data.reason,
                ),
            )
        else:
            body = EventIn.model_validate(data)
            event = HREvent(body.source, body.id, body.type, body.person, body.effective_at, body.timezone, body.reason)
    except ValidationError as exc:
        raise WebhookRejected(422, "invalid_event", format_validation_error(exc, "event").replace("\n", "; ")) from None
    if event.type == "end_date_changed" and not event.effective:
        raise WebhookRejected(422, "invalid_event", "event: effective_at: required for end_date_changed")
    try:
        check_effective(event)
    except ValueError as exc:
        raise WebhookRejected(422, "invalid_event", f"event: effective_at/timezone: {exc}") from None
    return event


# -- Standard Webhooks verification -----------------------------------------------


def verify_standard(headers: Any, body: bytes, key: bytes, now: datetime, tolerance: int) -> str:
    """Check webhook-id/-timestamp/-signature; returns the webhook-id."""
    names = ("webhook-id", "webhook-timestamp", "webhook-signature")
    values = {n: headers.get(n) for n in names}
    missing = [n for n in names if not values[n]]
    if missing:
        raise WebhookRejected(400, "missing_headers", f"missing Standard Webhooks header(s): {', '.join(missing)}")
    msg_id, stamp, signatures = values["webhook-id"], values["webhook-timestamp"], values["webhook-signature"]
    if len(msg_id) > 200:
        raise WebhookRejected(400, "bad_header", "webhook-id is longer than 200 characters")
    if not stamp.isdigit() or len(stamp) > 12:
        raise WebhookRejected(400, "bad_timestamp", "webhook-timestamp must be Unix time in whole seconds")
    skew = int(stamp) - int(now.timestamp())
    if abs(skew) > tolerance:
        where = "in the past" if skew < 0 else "in the future"
        raise WebhookRejected(
            401,
            "timestamp_out_of_window",
            f"webhook-timestamp is {abs(skew)} s {where}; at most {tolerance} s is allowed",
        )
    expected = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    for item in signatures.split():
        version, _, value = item.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return msg_id
    raise WebhookRejected(
        401, "bad_signature", "no v1 signature in webhook-signature matches the body for the configured secret"
    )


# -- metrics ------------------------------------------------------------------------


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can coexist)."""

    def __init__(self, engine_ref: Callable[[], Any]):
        self.registry = CollectorRegistry()
        self.received = Counter(
            "offboard_hr_events_received",
            "HR events accepted or recognized as duplicates",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "offboard_hr_events_rejected", "HR webhook deliveries refused", ["source", "reason"], registry=self.registry
        )
        self.outcomes = Counter(
            "offboard_hr_event_outcomes",
            "What became of HR events (unresolved = unknown person)",
            ["status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "offboard_action_latency_seconds",
            "Time from asking a system to verifying the change",
            ["system"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(engine_ref))

    def outcome(self, status: str) -> None:
        self.outcomes.labels(status).inc()

    def case_result(self, result: Any) -> None:
        for action in result.actions:
            start, end = action.get("requested_at"), action.get("verified_at") or action.get("responded_at")
            if start and end:
                self.latency.labels(action["system"]).observe(max(0.0, (end - start).total_seconds()))


class _StoreCollector:
    """Gauges read at scrape time: cases and HR events by status, rate-limit waits per system."""

    def __init__(self, engine_ref: Callable[[], Any]):
        self.engine_ref = engine_ref

    def collect(self) -> Any:
        engine = self.engine_ref()
        if engine is None:
            return
        by_case = GaugeMetricFamily("offboard_cases", "Cases by status", labels=["status"])
        by_event = GaugeMetricFamily(
            "offboard_hr_events", "Stored HR events by status (unresolved = unknown person)", labels=["status"]
        )
        for status, count in engine.store.case_counts_by_status().items():
            by_case.add_metric([status], count)
        for status, count in engine.store.hr_events.counts_by_status().items():
            by_event.add_metric([status], count)
        waits = CounterMetricFamily(
            "offboard_rate_limit_wait_seconds", "Seconds spent waiting on a system's rate limit", labels=["system"]
        )
        for system, bucket in dict(getattr(engine, "_buckets", {})).items():
            waits.add_metric([system], float(getattr(bucket, "waited", 0.0)))
        yield by_case
        yield by_event
        yield waits


# -- the app ------------------------------------------------------------------------


def _problem(exc: WebhookRejected) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise WebhookRejected(413, "body_too_large", f"the body is {declared} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookRejected(413, "body_too_large", f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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


ERRORS = {
    code: {"model": Problem, "description": text}
    for code, text in {
        400: "missing or malformed headers, or a body that is not JSON",
        401: "bad signature, or a timestamp outside the window",
        404: "unknown source",
        409: "a replayed webhook-id, or an event id reused for different content",
        413: "body over the size limit",
        415: "not a JSON content type",
        422: "not a valid event (the message names the field), or an unknown event type",
    }.items()
}


def _openapi_body(*models: type[BaseModel]) -> dict[str, Any]:
    content = {
        media: {"schema": {"$ref": f"#/components/schemas/{m.__name__}"}} for media, m in zip(JSON_TYPES, models)
    }
    return {"requestBody": {"required": True, "content": content}}


def _with_schemas(app: FastAPI, *models: type[BaseModel]) -> Callable[[], dict[str, Any]]:
    """app.openapi, plus the request-body models (read by hand, so FastAPI does not see them)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    return openapi


def create_app(engine_or_factory: Any, clock: Callable[[], datetime] = utcnow, *, process: bool = True) -> FastAPI:
    """The ASGI app; ``engine_or_factory`` is an Engine or a callable returning one (opened at start-up)."""
    state: dict[str, Any] = {}

    def setup(engine: Any) -> None:
        settings = ServerSettings.from_config(engine.config)
        try:
            secret = resolve_reference(settings.webhook_secret)
        except SecretError as exc:
            raise ConfigError(f"server.webhook_secret: {exc}") from None
        sources = {}
        for name, raw in settings.sources.items():
            where = f"{engine.config.source or 'config'}: server.sources.{name}"
            sources[name] = check_source_settings(name, raw, where) if name in BUNDLED_SOURCES else dict(raw)
        metrics = Metrics(lambda: state.get("engine"))
        intake = Intake(
            engine,
            clock=clock,
            poll_seconds=settings.poll_seconds,
            day_ends_at=time.fromisoformat(settings.day_ends_at),
            default_timezone=settings.default_timezone,
            replay_window=timedelta(seconds=2 * settings.tolerance_seconds),
            metrics=metrics,
        )
        state.update(
            engine=engine,
            settings=settings,
            key=signing_key(secret),
            sources=sources,
            metrics=metrics,
            intake=intake,
            auditor_token=auditor_token(settings, secret),
            auditor_trust=auditor_trust(settings, engine.config),
        )

    owned = not hasattr(engine_or_factory, "store")
    if not owned:
        setup(engine_or_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if owned:
            setup(engine_or_factory())
        app.state.intake = state["intake"]
        state["intake"].start(process=process)
        try:
            yield
        finally:
            await asyncio.to_thread(state["intake"].stop)
            if owned:
                state["engine"].close()

    app = FastAPI(
        title="offboard",
        version=_version(),
        lifespan=lifespan,
        description="HR termination events in; verified revocation out. See docs/webhooks.md.",
    )
    app.state.intake = state.get("intake")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Routing refusals (no such path, wrong method) explain themselves like every other refusal."""
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = "no such resource" if exc.status_code == 404 else str(exc.detail)
        return JSONResponse(
            {"error": code, "message": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    async def store(event: HREvent, body: bytes, delivery: str | None) -> Any:
        future = state["intake"].submit(event, hashlib.sha256(body).hexdigest(), delivery)
        return await asyncio.wrap_future(future)

    def reject(source: str, exc: WebhookRejected) -> JSONResponse:
        state["metrics"].rejected.labels(source, exc.code).inc()
        return _problem(exc)

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Readiness: store reachable and start-up recovery done",
        responses={503: {"description": "not ready yet", "model": Problem}},
    )
    async def ready() -> JSONResponse:
        intake = state["intake"]

        def pending() -> int:
            return intake.store.hr_events.waiting()

        try:
            waiting = await asyncio.to_thread(pending)
        except Exception as exc:
            return JSONResponse(
                {"error": "store_unavailable", "message": f"the store does not answer: {type(exc).__name__}"},
                status_code=503,
            )
        if not intake.ready.is_set():
            return JSONResponse({"error": "starting", "message": "resuming interrupted cases"}, status_code=503)
        return JSONResponse({"status": "ready", "pending_events": waiting})

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        data = await asyncio.to_thread(generate_latest, state["metrics"].registry)
        return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post(
        "/v1/events",
        status_code=202,
        summary="Receive an HR event (ours or a CloudEvent), Standard Webhooks signed",
        response_model=Receipt,
        responses={200: {"model": Receipt, "description": "already received (duplicate)"}, **ERRORS},
        openapi_extra=_openapi_body(EventIn, CloudEventIn),
    )
    async def post_event(request: Request) -> JSONResponse:
        settings = state["settings"]
        try:
            content_type = _content_type(request)
            body = await _read_body(request, settings.max_body_bytes)
            delivery = verify_standard(request.headers, body, state["key"], clock(), settings.tolerance_seconds)
            try:
                data = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                where = (
                    f": {exc.msg} at line {exc.lineno}, column {exc.colno}"
                    if isinstance(exc, json.JSONDecodeError)
                    else ": not UTF-8"
                )
                raise WebhookRejected(400, "malformed_json", f"the body is not valid JSON{where}") from None
            event = parse_event(data, content_type)
        except WebhookRejected as exc:
            return reject("standard", exc)
        result = await store(event, body, f"standard:{delivery}")
        return _answer(event.source, [event], [result])

    @app.post(
        "/v1/hooks/{source}",
        status_code=202,
        summary="Receive an HR system's own webhook (bamboohr, hibob, plugins)",
        response_model=Receipt,
        responses={200: {"model": Receipt, "description": "duplicate, or nothing to act on"}, **ERRORS},
    )
    async def post_hook(source: str, request: Request) -> JSONResponse:
        settings = state["settings"]
        if source not in state["sources"]:
            configured = ", ".join(state["sources"]) or "none"
            return reject(
                source[:40],
                WebhookRejected(
                    404, "unknown_source", f"no HR source {source!r} is configured (configured: {configured})"
                ),
            )
        try:
            body = await _read_body(request, settings.max_body_bytes)
            hook_settings = {**state["sources"][source], "now": clock()}
            events = plugins.get_plugin_manager().hook.parse_webhook(
                source=source, headers=dict(request.headers), body=body, settings=hook_settings
            )
            if events is None:
                raise WebhookRejected(404, "unknown_source", f"no installed adapter handles source {source!r}")
        except WebhookRejected as exc:
            return reject(source, exc)
        if not events:
            return JSONResponse({"status": "ignored", "events": []}, status_code=200)
        results = [await store(event, body, None) for event in events]
        return _answer(source, events, results)

    def _answer(source: str, events: list[HREvent], results: list[Any]) -> JSONResponse:
        metrics = state["metrics"]
        for result in results:
            if result.outcome in ("replayed", "conflict"):
                metrics.rejected.labels(source, result.outcome).inc()
                message = (
                    "this webhook-id was already received; the event is stored"
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

    mount_auditor_pages(app, state, clock)
    app.openapi = _with_schemas(app, EventIn, CloudEventIn)  # type: ignore[method-assign]
    return app


def _version() -> str:
    from .. import __version__

    return __version__
