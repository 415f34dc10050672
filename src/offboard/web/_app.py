"""``offboard serve``: the HTTP side. HR webhook intake, health, readiness, metrics, auditor pages.

``POST /v1/events`` takes our JSON event or a CloudEvents 1.0 structured event, signed
with the Standard Webhooks scheme; ``POST /v1/hooks/{source}`` takes an HR system's own
webhook through its ``parse_webhook`` adapter. Every refusal is a 4xx with a JSON body
``{"error": code, "message": ...}`` and stores nothing; an accepted event is durable
before the 202 goes out, and the worker acts on it afterwards.

The routes live in one router per area: ``offboard.web._webhooks`` (HR intake),
``offboard.web._health`` (health, readiness, metrics) and ``offboard.web._auditor`` (the
read-only ``/audit/`` pages). What they share is a :class:`~offboard.web._services.Services`
on ``app.state.services``, set up here once the engine is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..checklist._links import links_for
from ..config._secrets import resolve_reference
from ..errors import ConfigError, SecretError
from ..intake._hr_adapters import BUNDLED_SOURCES, check_source_settings
from ..intake._intake import Intake
from ..signals import open_signals
from ..signals import router as signals_router
from ..state._store import utcnow
from . import _approvals, _auditor, _health, _oidc, _tasks, _webhooks
from ._auditor import Refused, auditor_token, auditor_trust
from ._events import CloudEventIn, EventIn
from ._limits import FailureLimiter, Limited, RateLimiter, rate_limited, retry_after
from ._metrics import Metrics
from ._services import Services
from ._settings import ServerSettings, signing_key

__all__ = ["create_app", "ServerSettings", "EventIn", "CloudEventIn"]


def create_app(engine_or_factory: Any, clock: Callable[[], datetime] = utcnow, *, process: bool = True) -> FastAPI:
    """The ASGI app; ``engine_or_factory`` is an Engine or a callable returning one (opened at start-up)."""
    app = FastAPI(
        title="offboard",
        version=_version(),
        lifespan=_lifespan,
        description="HR termination events in; verified revocation out. See docs/webhooks.md.",
    )
    owned = not hasattr(engine_or_factory, "store")
    app.state.open_engine = engine_or_factory if owned else None
    app.state.clock = clock
    app.state.process = process
    app.state.intake = None
    app.state.signals = None
    if not owned:
        _set_up(app, engine_or_factory)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Refused, _auditor.refusal)
    app.add_exception_handler(Limited, _limited)
    app.include_router(_health.router)
    app.include_router(_webhooks.router)
    app.include_router(_auditor.router)
    app.include_router(_tasks.router)  # task and approval pages, sign-in: issue #25
    app.include_router(_approvals.router)
    app.include_router(_oidc.router)
    app.include_router(signals_router, dependencies=[Depends(rate_limited)])  # docs/shared-signals.md
    app.openapi = partial(_openapi, app, EventIn, CloudEventIn)  # type: ignore[method-assign]
    return app


def _set_up(app: FastAPI, engine: Any) -> None:
    """Check the ``server:`` settings and build what the routes share; ConfigError when unusable."""
    settings = ServerSettings.from_config(engine.config)
    try:
        secret = resolve_reference(settings.webhook_secret)
    except SecretError as exc:
        raise ConfigError(f"server.webhook_secret: {exc}") from None
    sources = {}
    for name, raw in settings.sources.items():
        where = f"{engine.config.source or 'config'}: server.sources.{name}"
        sources[name] = check_source_settings(name, raw, where) if name in BUNDLED_SOURCES else dict(raw)
    clock = app.state.clock
    people = [item.type for item in getattr(engine.config, "people", [])]
    metrics = Metrics(engine, sources=[*BUNDLED_SOURCES, *sources, *people, *settings.event_sources])
    seconds = partial(_seconds, clock)
    intake = Intake(
        engine,
        clock=clock,
        poll_seconds=settings.poll_seconds,
        day_ends_at=time.fromisoformat(settings.day_ends_at),
        default_timezone=settings.default_timezone,
        replay_window=timedelta(seconds=2 * settings.tolerance_seconds),
        metrics=metrics,
    )
    app.state.services = Services(
        engine=engine,
        settings=settings,
        signing_key=signing_key(secret),
        sources=sources,
        metrics=metrics,
        intake=intake,
        clock=clock,
        rate_limiter=RateLimiter(settings.client_rate_per_minute, settings.client_burst, seconds),
        auditor_failures=FailureLimiter(settings.auditor_failures_per_minute, seconds),
        auditor_token=auditor_token(settings, secret),
        auditor_trust=auditor_trust(settings, engine.config),
    )
    app.state.intake = intake  # the worker, for those who embed or test the app
    app.state.links = links_for(engine.config)  # personal task and approval links; None: off
    app.state.oidc = _oidc.settings_of(settings, app.state.links)
    app.state.signals = open_signals(engine, settings.signals, intake, clock, engine.data_dir)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the engine when the app owns it, run the intake worker while serving, then stop both."""
    open_engine = app.state.open_engine
    if open_engine is not None:
        _set_up(app, open_engine())
    services: Services = app.state.services
    services.intake.start(process=app.state.process)
    signals = app.state.signals
    if signals is not None:
        signals.start()
    try:
        yield
    finally:
        if signals is not None:
            await asyncio.to_thread(signals.stop)
        await asyncio.to_thread(services.intake.stop)
        if open_engine is not None:
            services.engine.close()


def _seconds(clock: Callable[[], datetime]) -> float:
    """The app's clock in seconds, for the per-client limits (the tests move it by hand)."""
    return clock().timestamp()


async def _limited(request: Request, exc: Exception) -> Response:
    """429 with Retry-After: JSON, or on the auditor pages a plain page for a browser."""
    assert isinstance(exc, Limited)
    headers = {"Retry-After": retry_after(exc.seconds)}
    if request.url.path.startswith("/audit"):
        return await _auditor.refusal(request, Refused(429, exc.code, exc.message, headers))
    return JSONResponse({"error": exc.code, "message": exc.message}, status_code=429, headers=headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Routing refusals (no such path, wrong method) explain themselves like every other refusal."""
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = "no such resource" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse(
        {"error": code, "message": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def _openapi(app: FastAPI, *models: type[BaseModel]) -> dict[str, Any]:
    """app.openapi, plus the request-body models (read by hand, so FastAPI does not see them)."""
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        app.openapi_schema = doc
    return app.openapi_schema


def _version() -> str:
    from .. import __version__

    return __version__
