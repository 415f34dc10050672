"""Liveness (``/health``), readiness (``/ready``) and the Prometheus metrics (``/metrics``)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ._events import Problem
from ._metrics import CONTENT_TYPE, exposition
from ._services import ServicesDep

__all__ = ["router"]

router = APIRouter()


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: store reachable and start-up recovery done",
    responses={503: {"description": "not ready yet", "model": Problem}},
)
async def ready(services: ServicesDep) -> JSONResponse:
    intake = services.intake
    try:
        waiting = await asyncio.to_thread(intake.store.hr_events.waiting)
    except Exception as exc:
        return JSONResponse(
            {"error": "store_unavailable", "message": f"the store does not answer: {type(exc).__name__}"},
            status_code=503,
        )
    if not intake.ready.is_set():
        return JSONResponse({"error": "starting", "message": "resuming interrupted cases"}, status_code=503)
    return JSONResponse({"status": "ready", "pending_events": waiting})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(services: ServicesDep) -> Response:
    data = await asyncio.to_thread(exposition, services.metrics)
    return Response(data, media_type=CONTENT_TYPE)
