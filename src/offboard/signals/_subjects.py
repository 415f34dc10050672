"""Event type URIs and subject identifiers (RFC 9493, SSF 1.0 complex subjects), and how they match.

A receiver adds subjects to a stream in any RFC 9493 format; offboard sends a SET about a
person to every stream holding a subject that names that person. A simple subject names a
person when it is exactly one of the person's own identifiers; a complex subject when its
``user`` member does and each other member is absent or equal (SSF 1.0, "Subject Matching").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "CAEP",
    "RISC",
    "SSF",
    "SESSION_REVOKED",
    "CREDENTIAL_CHANGE",
    "ACCOUNT_DISABLED",
    "ACCOUNT_ENABLED",
    "ACCOUNT_PURGED",
    "VERIFICATION",
    "STREAM_UPDATED",
    "EVENTS_SUPPORTED",
    "SubjectError",
    "canonical",
    "check_subject",
    "matches",
    "person_subjects",
]

CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
ACCOUNT_DISABLED = RISC + "account-disabled"
ACCOUNT_ENABLED = RISC + "account-enabled"
ACCOUNT_PURGED = RISC + "account-purged"
VERIFICATION = SSF + "verification"
STREAM_UPDATED = SSF + "stream-updated"

#: What offboard transmits (verification and stream-updated go to every stream regardless).
EVENTS_SUPPORTED = (SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED, ACCOUNT_ENABLED)

#: RFC 9493 formats and the members each requires.
FORMATS: dict[str, tuple[str, ...]] = {
    "account": ("uri",),
    "email": ("email",),
    "iss_sub": ("iss", "sub"),
    "opaque": ("id",),
    "phone_number": ("phone_number",),
    "did": ("url",),
    "uri": ("uri",),
    "aliases": ("identifiers",),
}
COMPLEX_MEMBERS = ("user", "device", "session", "application", "tenant", "org_unit", "group")
MAX_TEXT = 512


class SubjectError(ValueError):
    """A subject identifier that is not well formed; the message names the member."""


def check_subject(value: Any, where: str = "subject", *, nested: bool = False) -> dict[str, Any]:
    """``value`` if it is a well-formed subject identifier (simple, or complex at the top), else SubjectError."""
    if not isinstance(value, Mapping):
        raise SubjectError(f"{where}: must be a JSON object with a format")
    fmt = value.get("format")
    if not isinstance(fmt, str) or not fmt:
        raise SubjectError(f"{where}.format: required (a string such as email, iss_sub, opaque or complex)")
    if fmt == "complex":
        if nested:
            raise SubjectError(f"{where}: a complex subject cannot nest another complex subject")
        members = {k: v for k, v in value.items() if k != "format"}
        if not members:
            raise SubjectError(f"{where}: a complex subject needs at least one member (user, tenant, ...)")
        for name, member in members.items():
            check_subject(member, f"{where}.{name}", nested=True)
        return dict(value)
    if fmt == "aliases":
        items = value.get("identifiers")
        if not isinstance(items, list) or not items:
            raise SubjectError(f"{where}.identifiers: required, a non-empty array of subject identifiers")
        for i, item in enumerate(items):
            check_subject(item, f"{where}.identifiers[{i}]", nested=True)
            if item.get("format") == "aliases":
                raise SubjectError(f"{where}.identifiers[{i}]: aliases cannot nest aliases")
        return dict(value)
    for member in FORMATS.get(fmt, ()):
        text = value.get(member)
        if not isinstance(text, str) or not text.strip():
            raise SubjectError(f"{where}.{member}: required for format {fmt} (a non-empty string)")
        if len(text) > MAX_TEXT:
            raise SubjectError(f"{where}.{member}: longer than {MAX_TEXT} characters")
    if fmt not in FORMATS and len(json.dumps(value)) > 4 * MAX_TEXT:
        raise SubjectError(f"{where}: too large")
    return dict(value)


def canonical(subject: Mapping[str, Any]) -> str:
    """One spelling of a subject (sorted keys; email addresses compared without case)."""
    return json.dumps(_normal(subject), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _normal(subject: Any) -> Any:
    if not isinstance(subject, Mapping):
        return subject
    out = {k: _normal(v) for k, v in subject.items()}
    if out.get("format") == "email" and isinstance(out.get("email"), str):
        out["email"] = out["email"].strip().lower()
    return out


def person_subjects(person: Any, issuer: str) -> list[dict[str, Any]]:
    """The simple subject identifiers that name ``person``: every email, their id (iss_sub, opaque)."""
    found: list[dict[str, Any]] = [{"format": "email", "email": e} for e in person.emails]
    found.append({"format": "iss_sub", "iss": issuer, "sub": person.id})
    found.append({"format": "opaque", "id": person.id})
    if person.employee_id:
        found.append({"format": "opaque", "id": person.employee_id})
    return found


def matches(added: Mapping[str, Any], own: list[dict[str, Any]], tenant: Mapping[str, Any] | None = None) -> bool:
    """Whether a subject a receiver added names the person whose simple subjects are ``own``."""
    names = {canonical(s) for s in own}
    fmt = added.get("format")
    if fmt == "aliases":
        return any(matches(item, own, tenant) for item in added.get("identifiers") or ())
    if fmt != "complex":
        return canonical(added) in names
    user, tenant_added = added.get("user"), added.get("tenant")
    if tenant_added is not None and (tenant is None or canonical(tenant_added) != canonical(tenant)):
        return False  # a different tenant, or offboard speaks for none
    if user is not None:
        return matches(user, own, tenant)
    # Members offboard's events never carry (device, session, ...) match anything (SSF 1.0 "Subject
    # Matching"); but a subject with neither user nor tenant names nobody offboard speaks of.
    return tenant_added is not None
