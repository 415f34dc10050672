"""HR events: what an HR system's webhook tells offboard, whichever system sent it.

A ``parse_webhook`` hook verifies its sender's signature itself, then turns the payload into
:class:`HREvent` values. It raises :class:`WebhookRejected` for a request that must be refused,
returns ``[]`` for a genuine delivery that asks nothing of offboard (a ping, a change it does
not act on), and ``None`` for a source that is not its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .errors import WebhookRejected

__all__ = ["HREvent", "WebhookRejected", "EVENT_TYPES"]

#: What an HR event can ask for.
EVENT_TYPES = ("termination", "termination_cancelled", "end_date_changed")


@dataclass(frozen=True)
class HREvent:
    """One HR fact about one person, normalized from whichever system sent it."""

    source: str  # the sending system, e.g. "workday", "bamboohr"
    id: str  # the sender's id for this event; (source, id) is unique
    type: str  # one of EVENT_TYPES
    person: str  # a reference: email, employee id, or people-source id
    effective: str | None = None  # RFC 3339, a local date-time, or a date; None = now
    timezone: str | None = None  # IANA zone for a local effective time; default: the person's
    reason: str = ""
    legal_hold: str | None = None  # a hold the case carries (no deletion follow-up while it holds)

    @property
    def key(self) -> str:
        return f"{self.source}:{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HREvent:
        fields: dict[str, Any] = {k: data.get(k) for k in ("source", "id", "type", "person", "effective", "timezone")}
        hold = data.get("legal_hold")
        return cls(**fields, reason=data.get("reason") or "", legal_hold=str(hold).strip() or None if hold else None)
