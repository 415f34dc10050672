"""People sources: where offboard learns who people are and when their access ends.

A people source is a :class:`PeopleSource` subclass with a ``name``, a pydantic ``Settings``
model and a ``people()`` method yielding :class:`~offboard.models.Person`, registered through
the ``register_people_sources`` hook. The configuration's ``people:`` list names its ``type``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime, time
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from .errors import ConfigError
from .models import Person

__all__ = ["PeopleSource", "find_person", "identity_key", "unsafe_character", "end_date", "person_type"]


class PeopleSource:
    """Base class for people sources: set ``name`` and ``Settings``, and implement ``people()``."""

    name: ClassVar[str] = ""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")

    #: The validated ``Settings``; a subclass re-declares it (``settings: Settings``) for its own fields.
    settings: BaseModel

    def __init__(self, settings: BaseModel | dict[str, Any] | None = None, *, base: Path | None = None):
        self.settings = (
            settings if isinstance(settings, self.Settings) else self.Settings.model_validate(settings or {})
        )
        self.base = base or Path.cwd()  # the configuration file's folder: relative paths start here

    def people(self) -> Iterable[Person]:
        """Every person this source knows."""
        raise NotImplementedError

    def find(self, ref: str) -> Person | None:
        """The person matching ``ref`` (email, alias or employee id), or None."""
        return find_person(self.people(), ref)


def identity_key(value: str) -> str:
    """The form in which identifiers (ids, emails, employee ids) are compared.

    The rule: an all-ASCII local part (or a whole identifier without ``@``) and each all-ASCII
    label of the domain are lower-cased; any part holding a non-ASCII character is compared
    exactly, after NFC. No non-ASCII character is ever case-folded, and the ASCII test is made
    before normalizing, so a look-alike such as the Kelvin sign (U+212A, NFC "K") never matches
    an ASCII ``k``.
    """
    local, at, domain = value.strip().rpartition("@")
    if not at:
        return _fold(domain)
    return _fold(local) + "@" + ".".join(_fold(label) for label in domain.split("."))


def _fold(part: str) -> str:
    return part.lower() if part.isascii() else unicodedata.normalize("NFC", part)


#: Control, format (bidi, zero-width), line and paragraph separator characters: never in an identifier.
_UNSAFE_CATEGORIES = {
    "Cc": "a control",
    "Cf": "an invisible format (bidi or zero-width)",
    "Zl": "a line",
    "Zp": "a line",
}


def unsafe_character(value: str) -> str | None:
    """What is wrong with an identifier holding a control, bidi or zero-width character, else None."""
    for index, char in enumerate(value):
        kind = _UNSAFE_CATEGORIES.get(unicodedata.category(char))
        if kind:
            return f"holds {kind} character U+{ord(char):04X} at position {index}"
    return None


def find_person(people: Iterable[Person], ref: str) -> Person | None:
    """Match ``ref`` against id, emails and employee id by :func:`identity_key`."""
    key = identity_key(ref)
    for person in people:
        names = (person.id, person.email, *person.aliases, person.employee_id)
        if any(name and identity_key(name) == key for name in names):
            return person
    return None


def end_date(value: Any, zone: ZoneInfo, *, where: str = "", label: str = "end date") -> datetime | None:
    """An ISO date or date-time: a bare date means the end of that day (23:59:59), and no offset means ``zone``."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{label} {value!r} is not an ISO date", where=where or None) from None
    if len(str(value)) <= 10:
        parsed = datetime.combine(parsed.date(), time(23, 59, 59))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def person_type(value: Any, contractor_values: Iterable[str]) -> str:
    """``contractor`` when ``value`` is one of ``contractor_values`` (any case), else ``employee``."""
    wanted = {v.lower() for v in contractor_values}
    return "contractor" if value and str(value).strip().lower() in wanted else "employee"
