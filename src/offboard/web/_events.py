"""What an HR event looks like on the wire, and the Standard Webhooks check of its signature.

Our own JSON event (:class:`EventIn`) or a CloudEvents 1.0 structured event
(:class:`CloudEventIn`) becomes an :class:`~offboard.intake._hr_adapters.HREvent`; every
refusal is a :class:`~offboard.intake._hr_adapters.WebhookRejected` naming what is wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config._config import format_validation_error
from ..intake._hr_adapters import EVENT_TYPES, HREvent, WebhookRejected, check_person_ref
from ..intake._intake import check_effective

__all__ = [
    "CE_TYPES",
    "JSON_TYPES",
    "CloudEventIn",
    "EventData",
    "EventIn",
    "Problem",
    "Receipt",
    "parse_event",
    "verify_standard",
]

CE_TYPES = {f"offboard.{t}": t for t in EVENT_TYPES}
JSON_TYPES = ("application/json", "application/cloudevents+json")


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
    legal_hold: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="a legal hold the case carries: no deletion while it holds",
    )


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
                    ce.data.legal_hold,
                ),
            )
        else:
            body = EventIn.model_validate(data)
            event = HREvent(
                body.source,
                body.id,
                body.type,
                body.person,
                body.effective_at,
                body.timezone,
                body.reason,
                body.legal_hold,
            )
    except ValidationError as exc:
        raise WebhookRejected(422, "invalid_event", format_validation_error(exc, "event").replace("\n", "; ")) from None
    check_person_ref(event.person, "event: data.person" if cloud else "event: person")
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
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:  # "²".isdigit() is True too
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
