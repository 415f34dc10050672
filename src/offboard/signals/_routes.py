"""The transmitter's HTTP side (SSF 1.0): configuration metadata, JWKS, stream management, poll.

Mounted by ``offboard serve`` when ``server.signals`` is configured; otherwise each path is a 404.
Every management call needs a receiver's bearer token, and a receiver sees only its own streams
(someone else's stream is a 404, as if it did not exist).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ..intake._bodies import read_bounded
from ._requests import Refusal, bearer, endpoint_url, read_json, string_list, text
from ._subjects import SubjectError, canonical, check_subject
from ._transmitter import POLL, PUSH, Transmitter

__all__ = ["router", "refusal_response"]

router = APIRouter(tags=["shared signals"])

NO_STORE = {"Cache-Control": "no-store"}
STATUSES = ("enabled", "paused", "disabled")
TRANSMITTER_SUPPLIED = ("iss", "aud", "events_supported", "events_delivered", "min_verification_interval")


def refusal_response(exc: Refusal, *, rfc: bool = False) -> JSONResponse:
    """``{"error", "message"}``, or RFC 8935/8936's ``{"err", "description"}`` with ``rfc``.

    A 404 (no such stream or transmitter, or signals not configured) is a routing refusal: it
    always has offboard's shape, like every other unknown path.
    """
    if rfc and exc.status != 404:
        body = {"err": exc.code, "description": exc.message}
    else:
        body = {"error": exc.code, "message": exc.message}
    return JSONResponse(body, status_code=exc.status, headers={**NO_STORE, **exc.headers})


def _transmitter(request: Request) -> Transmitter:
    signals = getattr(request.app.state, "signals", None)
    if signals is None or signals.transmitter is None:
        raise Refusal(404, "not_found", "no such resource (shared signals are not configured)")
    return signals.transmitter


def _receiver(request: Request, transmitter: Transmitter) -> str:
    name = transmitter.receiver_for(bearer(request))
    if name is None:
        raise Refusal(
            401, "authentication_failed", "unknown bearer token", {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return name


def _stream(transmitter: Transmitter, receiver: str, stream_id: Any) -> dict[str, Any]:
    if not isinstance(stream_id, str) or not stream_id:
        raise Refusal(400, "invalid_request", "stream_id: required (a string)")
    stream = transmitter.store.signals.stream(stream_id[:200])
    if stream is None or stream["receiver"] != receiver:
        raise Refusal(404, "not_found", f"no stream {stream_id[:80]!r} for this receiver")
    return stream


def _gone(stream_id: str) -> Refusal:
    return Refusal(404, "not_found", f"stream {stream_id[:80]!r} was deleted meanwhile")


def _delivery(value: Any) -> dict[str, Any]:
    """The receiver-supplied ``delivery`` object; poll when absent (SSF 1.0, "Creating a Stream")."""
    if value is None:
        return {"method": POLL}
    if not isinstance(value, dict):
        raise Refusal(400, "invalid_request", "delivery: must be a JSON object")
    method = value.get("method")
    if method == POLL:
        return {"method": POLL}  # the transmitter supplies the endpoint_url
    if method != PUSH:
        raise Refusal(400, "invalid_request", f"delivery.method: must be {PUSH} (push) or {POLL} (poll)")
    out = {"method": PUSH, "endpoint_url": endpoint_url(value.get("endpoint_url"), "delivery.endpoint_url")}
    header = value.get("authorization_header")
    if header is not None:
        if not isinstance(header, str) or len(header) > 4096 or any(c in header for c in "\r\n\0"):
            raise Refusal(400, "invalid_request", "delivery.authorization_header: must be one line of text")
        out["authorization_header"] = header
    return out


def _receiver_supplied(body: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The receiver-supplied properties of ``body`` over ``current`` (PATCH) or alone (POST, PUT)."""
    config = dict(current or {})
    if "events_requested" in body or current is None:
        config["events_requested"] = string_list(body, "events_requested")
    if "delivery" in body or current is None:
        config["delivery"] = _delivery(body.get("delivery"))
    if "description" in body or current is None:
        config["description"] = text(body, "description", limit=10_000)
        if config["description"] is not None:
            config["description"] = config["description"][:1000]  # the transmitter MAY truncate
    return config


def _check_supplied(transmitter: Transmitter, stream: dict[str, Any], body: dict[str, Any]) -> None:
    """Transmitter-supplied properties in an update MUST match (SSF 1.0 "Updating a Stream")."""
    rendered = transmitter.render(stream)
    for name in TRANSMITTER_SUPPLIED:
        if name in body and body[name] != rendered.get(name):
            raise Refusal(400, "invalid_request", f"{name}: is set by the transmitter and does not match")


# -- discovery ----------------------------------------------------------------------------


@router.get("/.well-known/ssf-configuration", summary="SSF transmitter configuration metadata")
async def configuration(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
    except Refusal as exc:
        return refusal_response(exc)
    issuer = transmitter.settings.issuer
    return JSONResponse(
        {
            "spec_version": "1_0",
            "issuer": issuer,
            "jwks_uri": f"{issuer}/ssf/jwks.json",
            "delivery_methods_supported": [PUSH, POLL],
            "configuration_endpoint": f"{issuer}/ssf/stream",
            "status_endpoint": f"{issuer}/ssf/status",
            "add_subject_endpoint": f"{issuer}/ssf/subjects:add",
            "remove_subject_endpoint": f"{issuer}/ssf/subjects:remove",
            "verification_endpoint": f"{issuer}/ssf/verify",
            "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6750"}],
            "default_subjects": "NONE",
            **({"critical_subject_members": ["tenant", "user"]} if transmitter.settings.tenant else {}),
        }
    )


@router.get("/ssf/jwks.json", summary="The keys SETs are signed with")
async def jwks(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
    except Refusal as exc:
        return refusal_response(exc)
    return JSONResponse(transmitter.key.jwks(), headers={"Cache-Control": "public, max-age=300"})


# -- streams ------------------------------------------------------------------------------


@router.post("/ssf/stream", status_code=201, summary="Create a stream")
async def create_stream(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        body = await read_json(request, required=False)
        config = _receiver_supplied(body)
        limit = transmitter.settings.receivers[receiver].max_streams
        if len(transmitter.store.signals.streams(receiver)) >= limit:
            raise Refusal(409, "too_many_streams", f"this receiver already has {limit} streams (its max_streams)")
        stream_id = transmitter.new_stream_id()
        await asyncio.to_thread(
            transmitter.store.signals.create_stream, stream_id, receiver, config, transmitter.clock()
        )
    except Refusal as exc:
        return refusal_response(exc)
    stream = transmitter.store.signals.stream(stream_id)
    if stream is None:  # deleted by a concurrent request of the same receiver
        return refusal_response(_gone(stream_id))
    return JSONResponse(transmitter.render(stream), status_code=201, headers=NO_STORE)


@router.get("/ssf/stream", summary="Read one stream's configuration, or list this receiver's streams")
async def read_stream(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        stream_id = request.query_params.get("stream_id")
        if stream_id is None:
            streams = transmitter.store.signals.streams(receiver)
            return JSONResponse([transmitter.render(s) for s in streams], headers=NO_STORE)
        stream = _stream(transmitter, receiver, stream_id)
    except Refusal as exc:
        return refusal_response(exc)
    return JSONResponse(transmitter.render(stream), headers=NO_STORE)


@router.patch("/ssf/stream", summary="Update a stream's configuration")
async def update_stream(request: Request) -> Response:
    return await _change(request, replace=False)


@router.put("/ssf/stream", summary="Replace a stream's configuration")
async def replace_stream(request: Request) -> Response:
    return await _change(request, replace=True)


async def _change(request: Request, *, replace: bool) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        body = await read_json(request)
        stream = _stream(transmitter, receiver, body.get("stream_id"))
        _check_supplied(transmitter, stream, body)
        config = _receiver_supplied(body, None if replace else stream["config"])
        transmitter.store.signals.update_stream(stream["stream_id"], transmitter.clock(), config=config)
    except Refusal as exc:
        return refusal_response(exc)
    updated = transmitter.store.signals.stream(stream["stream_id"])
    if updated is None:
        return refusal_response(_gone(stream["stream_id"]))
    return JSONResponse(transmitter.render(updated), headers=NO_STORE)


@router.delete("/ssf/stream", status_code=204, summary="Delete a stream")
async def delete_stream(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        stream = _stream(transmitter, receiver, request.query_params.get("stream_id"))
        transmitter.store.signals.delete_stream(stream["stream_id"])
    except Refusal as exc:
        return refusal_response(exc)
    return Response(status_code=204, headers=NO_STORE)


# -- status -------------------------------------------------------------------------------


def _status(stream: dict[str, Any]) -> dict[str, Any]:
    out = {"stream_id": stream["stream_id"], "status": stream["status"]}
    if stream["reason"]:
        out["reason"] = stream["reason"]
    return out


@router.get("/ssf/status", summary="Read a stream's status")
async def read_status(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        stream = _stream(transmitter, receiver, request.query_params.get("stream_id"))
    except Refusal as exc:
        return refusal_response(exc)
    return JSONResponse(_status(stream), headers=NO_STORE)


@router.post("/ssf/status", summary="Update a stream's status")
async def update_status(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        body = await read_json(request)
        stream = _stream(transmitter, receiver, body.get("stream_id"))
        status = text(body, "status", required=True)
        if status not in STATUSES:
            raise Refusal(400, "invalid_request", f"status: must be one of {', '.join(STATUSES)}")
        reason = text(body, "reason", limit=1000)
        now = transmitter.clock()
        transmitter.store.signals.update_stream(stream["stream_id"], now, status=status, reason=reason)
        if status == "disabled":  # a disabled stream holds nothing (SSF 1.0, "Stream Status")
            transmitter.store.signals.drop_pending(stream["stream_id"], now, "stream disabled by the receiver")
        transmitter.wake()
    except Refusal as exc:
        return refusal_response(exc)
    updated = transmitter.store.signals.stream(stream["stream_id"])
    if updated is None:
        return refusal_response(_gone(stream["stream_id"]))
    return JSONResponse(_status(updated), headers=NO_STORE)


# -- subjects -----------------------------------------------------------------------------


async def _subject_request(request: Request) -> tuple[Transmitter, dict[str, Any], str]:
    transmitter = _transmitter(request)
    receiver = _receiver(request, transmitter)
    body = await read_json(request)
    stream = _stream(transmitter, receiver, body.get("stream_id"))
    if "verified" in body and not isinstance(body["verified"], bool):
        raise Refusal(400, "invalid_request", "verified: must be true or false")
    try:
        subject = check_subject(body.get("subject"), "subject")
    except SubjectError as exc:
        raise Refusal(400, "invalid_request", str(exc)) from None
    return transmitter, stream, canonical(subject)


@router.post("/ssf/subjects:add", summary="Add a subject to a stream")
async def add_subject(request: Request) -> Response:
    try:
        transmitter, stream, subject = await _subject_request(request)
        transmitter.store.signals.add_subject(stream["stream_id"], subject)
    except Refusal as exc:
        return refusal_response(exc)
    return Response(status_code=200, headers=NO_STORE)


@router.post("/ssf/subjects:remove", summary="Remove a subject from a stream")
async def remove_subject(request: Request) -> Response:
    try:
        transmitter, stream, subject = await _subject_request(request)
        transmitter.store.signals.remove_subject(stream["stream_id"], subject)  # unknown: silent, no probing
    except Refusal as exc:
        return refusal_response(exc)
    return Response(status_code=204, headers=NO_STORE)


# -- verification ---------------------------------------------------------------------------


@router.post("/ssf/verify", summary="Ask for a verification event")
async def verify(request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        body = await read_json(request)
        stream = _stream(transmitter, receiver, body.get("stream_id"))
        state = text(body, "state", limit=1000)
        now = transmitter.clock()
        interval = timedelta(seconds=transmitter.settings.min_verification_interval)
        last = stream["verified_at"]
        if last is not None and now - last < interval:
            wait = max(1, int((last + interval - now).total_seconds()) + 1)
            raise Refusal(
                429, "too_many_requests", f"one verification every {interval.seconds} s", {"Retry-After": str(wait)}
            )
        transmitter.store.signals.update_stream(stream["stream_id"], now, verified_at=now)
        transmitter.verification(stream, state)
    except Refusal as exc:
        return refusal_response(exc)
    return Response(status_code=204, headers=NO_STORE)


# -- poll (RFC 8936) ----------------------------------------------------------------------


@router.post("/ssf/poll/{stream_id}", summary="Poll a stream for SETs, acknowledging earlier ones (RFC 8936)")
async def poll(stream_id: str, request: Request) -> Response:
    try:
        transmitter = _transmitter(request)
        receiver = _receiver(request, transmitter)
        stream = _stream(transmitter, receiver, stream_id)
        if stream["config"]["delivery"]["method"] != POLL:
            raise Refusal(400, "invalid_request", "this stream is delivered by push, not poll")
        body = await read_json(request, required=False)
        limit = body.get("maxEvents", transmitter.settings.max_poll_events)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise Refusal(400, "invalid_request", "maxEvents: must be a non-negative integer")
        immediately = body.get("returnImmediately", False)
        if not isinstance(immediately, bool):
            raise Refusal(400, "invalid_request", "returnImmediately: must be true or false")
        acks = string_list(body, "ack", limit=10_000) or []
        errors = body.get("setErrs", {})
        if not isinstance(errors, dict) or not all(isinstance(v, dict) for v in errors.values()):
            raise Refusal(400, "invalid_request", "setErrs: must map each jti to {err, description}")
        if len(errors) > 10_000:
            raise Refusal(400, "invalid_request", "setErrs: more than 10000 entries")
    except Refusal as exc:
        return refusal_response(exc, rfc=True)
    await asyncio.to_thread(transmitter.acknowledged, stream, acks, errors)
    limit = min(limit, transmitter.settings.max_poll_events)
    rows, more = transmitter.store.signals.pending(stream["stream_id"], limit)
    waited = 0.0
    while limit and not rows and not immediately and waited < transmitter.settings.poll_wait_seconds:
        await asyncio.sleep(0.1)
        waited += 0.1
        rows, more = transmitter.store.signals.pending(stream["stream_id"], limit)
    if stream["status"] != "enabled":
        rows, more = [], False
    return JSONResponse({"sets": {r["jti"]: r["token"] for r in rows}, "moreAvailable": more}, headers=NO_STORE)


# -- offboard as a receiver (RFC 8935 push from an identity provider) ---------------------------


@router.post("/ssf/receive/{name}", status_code=202, summary="Receive a SET an identity provider pushes (RFC 8935)")
async def receive(name: str, request: Request) -> Response:
    signals = getattr(request.app.state, "signals", None)
    receiver = signals.receiver if signals is not None else None
    try:
        if receiver is None or name not in receiver.providers:
            raise Refusal(404, "not_found", "no such transmitter is configured")
        receiver.authenticate(name, request.headers.get("authorization"))
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/secevent+jwt":
            raise Refusal(400, "invalid_request", "send the SET as Content-Type: application/secevent+jwt")
        body = await _read_set(request)
        claims = await asyncio.to_thread(receiver.verify, name, body)
        await asyncio.to_thread(receiver.act, name, claims, body)
    except Refusal as exc:
        return refusal_response(exc, rfc=True)
    return Response(status_code=202)


async def _read_set(request: Request) -> bytes:
    """The pushed SET's bytes; RFC 8935 answers every refusal with ``invalid_request``."""
    from ._receiver import MAX_SET_BYTES

    return await read_bounded(
        request,
        MAX_SET_BYTES,
        10,
        lambda status, _code, message: Refusal(status, "invalid_request", message),
        what="the SET",
        disconnected="the client disconnected before the SET was complete",
    )
