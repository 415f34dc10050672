"""The bundled ``parse_webhook`` adapters for BambooHR and HiBob (``HREvent`` is in ``offboard.hr``).

An adapter verifies its sender's signature itself, then turns the vendor's payload
into :class:`~offboard.hr.HREvent` values. It raises :class:`WebhookRejected` for a request that
must be refused, returns ``[]`` for a genuine delivery that asks nothing of us (a
ping, a change we do not act on), and ``None`` for a source that is not its own.

This module is imported whenever the plugin manager loads (every CLI start), so it
uses the standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..config._secrets import Secret, resolve_reference
from ..errors import WebhookRejected
from ..hookspecs import hookimpl
from ..hr import EVENT_TYPES, HREvent
from ..people import unsafe_character

__all__ = ["HREvent", "WebhookRejected", "EVENT_TYPES", "BUNDLED_SOURCES", "check_person_ref", "check_source_settings"]


# -- shared helpers ---------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _secret(settings: Mapping[str, Any], source: str) -> bytes:
    value = settings.get("secret")
    if value is None:
        raise WebhookRejected(
            503, "not_configured", f"no signing secret is configured for {source} (server.sources.{source}.secret)"
        )
    if not isinstance(value, Secret):
        value = resolve_reference(str(value))
    return value.reveal().encode()


def _now(settings: Mapping[str, Any]) -> datetime:
    now = settings.get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


def _json(body: bytes, source: str) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise WebhookRejected(400, "malformed_json", f"the {source} body is not UTF-8 text") from None
    except RecursionError:
        raise WebhookRejected(400, "malformed_json", f"the {source} body is JSON nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise WebhookRejected(
            400,
            "malformed_json",
            f"the {source} body is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
        ) from None


def check_person_ref(ref: str, field: str) -> str:
    """``ref`` if it can name a person; WebhookRejected (422) naming ``field`` if it holds invisible characters."""
    problem = unsafe_character(ref)
    if problem:
        raise WebhookRejected(422, "invalid_event", f"{field}: the person reference {problem}")
    return ref


def _same(expected: str, given: str) -> bool:
    """Constant-time comparison of a signature we computed with one a sender gave (any characters)."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


# -- BambooHR ---------------------------------------------------------------------
#
# Signature (documentation.bamboohr.com/docs/webhooks, "Security"): headers
# X-BambooHR-Signature and X-BambooHR-Timestamp; the signature is the lowercase hex
# HMAC-SHA256, keyed with the webhook's private key, of the raw body followed by the
# timestamp (no separator). Only field-based ("global") JSON payloads carry values:
#   {"employees": [{"id": "123", "action": "Updated", "timestamp": "...",
#                   "changedFields": ["Status"], "fields": {"Status": "Inactive", ...}}]}
# Field values arrive either plain or as {"value": ...}, under names or aliases.

BAMBOO_DEFAULTS: dict[str, Any] = {
    "tolerance_seconds": 300,
    "person_fields": ["workEmail", "Work Email", "employeeNumber", "Employee #"],
    "status_fields": ["status", "Status", "employmentStatus", "Employment Status"],
    "terminated_values": ["Inactive", "Terminated"],
    "date_fields": ["terminationDate", "Termination Date", "employmentStatusDate", "Employment Status: Date"],
    "timezone_fields": ["timezone", "Time Zone"],
}


def _bamboo_timestamp(value: str) -> datetime | None:
    """Unix seconds or an ISO 8601 time; None for anything else, however odd (never raises)."""
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (ValueError, OverflowError, OSError):  # not a number, nan/inf, or a year the platform cannot show
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _field(fields: Mapping[str, Any], names: list[str]) -> tuple[str | None, str | None]:
    for name in names:
        if name in fields:
            value = fields[name]
            if isinstance(value, dict):
                value = value.get("value")
            if value not in (None, ""):
                return name, str(value).strip()
    return None, None


def parse_bamboohr(headers: Mapping[str, str], body: bytes, settings: Mapping[str, Any]) -> list[HREvent]:
    """Verify a BambooHR delivery and read terminations, reversals and date changes from it."""
    opts = {**BAMBOO_DEFAULTS, **{k: v for k, v in settings.items() if k in BAMBOO_DEFAULTS}}
    signature = _header(headers, "X-BambooHR-Signature")
    stamp = _header(headers, "X-BambooHR-Timestamp")
    missing = [n for n, v in (("X-BambooHR-Signature", signature), ("X-BambooHR-Timestamp", stamp)) if not v]
    if not signature or not stamp:
        raise WebhookRejected(400, "missing_headers", f"BambooHR delivery lacks the {' and '.join(missing)} header(s)")
    moment = _bamboo_timestamp(stamp)
    if moment is None:
        raise WebhookRejected(400, "bad_timestamp", "X-BambooHR-Timestamp is neither Unix seconds nor an ISO 8601 time")
    age = abs((_now(settings) - moment).total_seconds())
    if age > float(opts["tolerance_seconds"]):
        raise WebhookRejected(
            401,
            "timestamp_out_of_window",
            f"X-BambooHR-Timestamp is {age:.0f} s away from now (allowed: {opts['tolerance_seconds']} s)",
        )
    expected = hmac.new(_secret(settings, "bamboohr"), body + stamp.encode(), hashlib.sha256).hexdigest()
    if not _same(expected, signature.strip().lower()):
        raise WebhookRejected(
            401,
            "bad_signature",
            "X-BambooHR-Signature does not match the body and timestamp for the configured private key",
        )
    data = _json(body, "BambooHR")
    if not isinstance(data, dict):
        raise WebhookRejected(422, "invalid_event", "a BambooHR payload must be a JSON object")
    employees = data.get("employees")
    if employees is None:  # event-based payloads carry ids but no values: nothing to act on
        return []
    if not isinstance(employees, list):
        raise WebhookRejected(422, "invalid_event", "'employees' must be a list in a field-based BambooHR payload")
    events = []
    terminated = {v.lower() for v in opts["terminated_values"]}
    for index, item in enumerate(employees):
        if not isinstance(item, dict) or not isinstance(item.get("fields", {}), dict):
            raise WebhookRejected(422, "invalid_event", f"employees[{index}] must be an object with a 'fields' object")
        if str(item.get("action", "Updated")).lower() == "deleted":
            continue
        fields = item.get("fields") or {}
        changed = set(item.get("changedFields") or [])
        status_name, status = _field(fields, opts["status_fields"])
        date_name, date = _field(fields, opts["date_fields"])
        _, zone = _field(fields, opts["timezone_fields"])
        ref_name, ref = _field(fields, opts["person_fields"])
        if ref is None and item.get("id") not in (None, ""):
            ref_name, ref = "id", str(item["id"])
        if not ref:
            raise WebhookRejected(
                422, "invalid_event", f"employees[{index}] names nobody: no id and none of {opts['person_fields']}"
            )
        if status is not None and status.lower() in terminated:
            kind = (
                "termination"
                if status_name in changed or not changed
                else ("end_date_changed" if date_name in changed else None)
            )
        elif status is not None and status_name in changed:
            kind = "termination_cancelled"  # set back to active: a reversed termination (or a rehire)
        else:
            kind = None
        if kind is None:
            continue
        check_person_ref(ref, f"employees[{index}].{ref_name}")
        event_id = _digest(item.get("id"), item.get("timestamp") or stamp, kind, status, date)
        events.append(
            HREvent(
                "bamboohr", event_id, kind, ref, date, zone, reason=f"BambooHR: {status_name or 'status'} is {status}"
            )
        )
    return events


# -- HiBob ------------------------------------------------------------------------
#
# Signature (apidocs.hibob.com/docs/working-with-webhooks, "Authenticate your
# events"): header Bob-Signature, the Base64 HMAC-SHA512 of the raw body keyed with
# the secret shown in Bob's webhook settings. Bob sends no timestamp header, so
# replays are harmless only because events are idempotent by id. v2 payloads:
#   {"companyId": 1, "type": "employee.left", "triggeredBy": "...", "triggeredAt": "...",
#    "version": "v2", "data": {"employeeId": "..."}}
# (v1 also carried "employee": {"id", "email", ...}). Lifecycle events fire at midnight
# of the effective date in the site's zone, so an employee.left means "now".

HIBOB_DEFAULTS: dict[str, Any] = {"termination_types": ["employee.left"], "cancel_types": []}
HIBOB_PINGS = (b"Ping test", b'{"text":"Ping test"}', b'{"text": "Ping test"}')


def parse_hibob(headers: Mapping[str, str], body: bytes, settings: Mapping[str, Any]) -> list[HREvent]:
    """Verify a HiBob delivery and read terminations from it."""
    opts = {**HIBOB_DEFAULTS, **{k: v for k, v in settings.items() if k in HIBOB_DEFAULTS}}
    if body.strip() in HIBOB_PINGS:  # Bob's connection test; must be answered 2xx
        return []
    signature = _header(headers, "Bob-Signature")
    if not signature:
        raise WebhookRejected(400, "missing_headers", "HiBob delivery lacks the Bob-Signature header")
    expected = base64.b64encode(hmac.new(_secret(settings, "hibob"), body, hashlib.sha512).digest()).decode()
    if not _same(expected, signature.strip()):
        raise WebhookRejected(401, "bad_signature", "Bob-Signature does not match the body for the configured secret")
    data = _json(body, "HiBob")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WebhookRejected(422, "invalid_event", "a HiBob payload must be a JSON object with a 'type'")
    kind = (
        "termination"
        if data["type"] in opts["termination_types"]
        else "termination_cancelled"
        if data["type"] in opts["cancel_types"]
        else None
    )
    if kind is None:
        return []
    inner: dict[str, Any] = data["data"] if isinstance(data.get("data"), dict) else {}
    employee: dict[str, Any] = data["employee"] if isinstance(data.get("employee"), dict) else {}
    named = [
        (f"{where}.{key}", holder.get(key))
        for where, holder, key in (
            ("data", inner, "email"),
            ("data", inner, "workEmail"),
            ("employee", employee, "email"),
            ("data", inner, "employeeId"),
            ("employee", employee, "id"),
        )
    ]
    field, ref = next(((f, v) for f, v in named if v), ("", None))
    if not ref:
        raise WebhookRejected(
            422, "invalid_event", f"the HiBob {data['type']} event names no employee (data.employeeId)"
        )
    check_person_ref(str(ref), field)
    event_id = _digest(data["type"], str(ref), data.get("triggeredAt"), data.get("companyId"))
    return [HREvent("hibob", event_id, kind, str(ref), reason=f"HiBob: {data['type']}")]


# -- the hook -----------------------------------------------------------------------

PARSERS = {"bamboohr": (parse_bamboohr, BAMBOO_DEFAULTS), "hibob": (parse_hibob, HIBOB_DEFAULTS)}
BUNDLED_SOURCES = tuple(PARSERS)


def check_source_settings(source: str, settings: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a bundled source's settings at start-up; resolve its secret reference."""
    from ..errors import ConfigError

    _, defaults = PARSERS[source]
    unknown = sorted(set(settings) - set(defaults) - {"secret"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: secret, {', '.join(defaults)})")
    if "secret" not in settings:
        raise ConfigError(f"{where}.secret: required (env:NAME or file:PATH holding the {source} webhook key)")
    out = dict(settings)
    if not isinstance(out["secret"], Secret):
        try:
            out["secret"] = resolve_reference(str(out["secret"]))
        except Exception as exc:
            raise ConfigError(f"{where}.secret: {exc}") from None
    return out


@hookimpl
def parse_webhook(source, headers, body, settings):
    entry = PARSERS.get(source)
    if entry is None:
        return None
    return entry[0](headers, body, settings)
