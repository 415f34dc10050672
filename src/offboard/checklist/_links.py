"""Personal links: signed, expiring, single-purpose tokens that open one task (or one approval) for one person.

A link is ``<server.public_url>/tasks/t/<token>`` or ``/approvals/a/<token>``. The token carries
its purpose (``task`` or ``approval``), what it opens (a case and task, or an approval request),
who it was sent to, and when it was issued and expires; an HMAC-SHA256 under a key derived from
``server.links_secret`` (a reference, held as a :class:`~offboard.config._secrets.Secret`) signs
it, with the purpose in the signed text, so a token made for one purpose never opens another.
Nothing is stored: a link is checked by its signature and its expiry, and what it opens decides
whether it can still act (a closed task refuses a second "done").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config._secrets import Secret, resolve_reference
from ..errors import ConfigError, OffboardError, SecretError

__all__ = ["LinkError", "LinkSettings", "Links", "Grant", "links_for", "MIN_SECRET_CHARS"]

PURPOSES = ("task", "approval", "session", "signin")  # the last two: the sign-in cookies of /tasks/
MIN_SECRET_CHARS = 32
MAX_TOKEN_CHARS = 2000


class LinkError(OffboardError):
    """A link that does not open anything: malformed, altered, expired or made for something else."""

    def __init__(self, message: str, code: str = "bad_link"):
        super().__init__(message)
        self.code = code


class LinkSettings(BaseModel):
    """The keys of ``server:`` that personal links read (``ServerSettings`` declares them too)."""

    model_config = ConfigDict(extra="ignore")

    links_secret: str | None = Field(default=None, description="key that signs task and approval links: env:/file:")
    public_url: str | None = Field(default=None, description="the address people reach `offboard serve` at")
    link_days: int = Field(default=14, ge=1, le=90, description="days a task or approval link stays valid")

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http:// for a local test)")
        return value.rstrip("/") if value else value


@dataclass(frozen=True)
class Grant:
    """What a valid token opens: ``subject`` is ``case/task`` or an approval request id."""

    purpose: str
    subject: str
    recipient: str
    issued_at: datetime
    expires_at: datetime

    @property
    def case_task(self) -> tuple[str, str]:
        case, _, task = self.subject.partition("/")
        return case, task


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Links:
    """Makes and checks link tokens with one key; ``repr`` never shows it."""

    def __init__(self, secret: Secret, public_url: str | None = None, days: int = 14):
        self._key = hmac.new(secret.reveal().encode(), b"offboard personal links v1", hashlib.sha256).digest()
        self.public_url = public_url
        self.lifetime = timedelta(days=days)

    def __repr__(self) -> str:
        return f"Links(public_url={self.public_url!r}, days={self.lifetime.days})"

    def _sign(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}.{body}".encode(), hashlib.sha256).digest())

    def token(self, purpose: str, subject: str, recipient: str, now: datetime, ttl: timedelta | None = None) -> str:
        """A token for ``purpose`` opening ``subject`` for ``recipient`` from ``now`` for ``ttl`` (default: the
        configured days)."""
        if purpose not in PURPOSES:
            raise ValueError(f"unknown link purpose {purpose!r}")
        issued = int(now.timestamp())
        payload = {
            "p": purpose,
            "s": subject,
            "r": recipient,
            "i": issued,
            "e": issued + int((ttl or self.lifetime).total_seconds()),
            "n": secrets.token_hex(4),
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{body}.{self._sign(purpose, body)}"

    def check(self, token: str, purpose: str, now: datetime) -> Grant:
        """The grant of ``token`` for ``purpose``; LinkError (never echoing the token) otherwise."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise LinkError("this link is not one offboard made (it may have been cut short when copied)")
        body, signature = token.split(".")
        if not hmac.compare_digest(self._sign(purpose, body).encode(), signature.encode()):
            raise LinkError("this link is not valid: it was altered, or it was made for something else")
        try:
            payload = json.loads(_unb64(body))
            grant = Grant(
                purpose=str(payload["p"]),
                subject=str(payload["s"]),
                recipient=str(payload["r"]),
                issued_at=datetime.fromtimestamp(int(payload["i"]), UTC),
                expires_at=datetime.fromtimestamp(int(payload["e"]), UTC),
            )
        except (ValueError, KeyError, TypeError, binascii.Error, OverflowError, OSError):
            raise LinkError("this link is not valid: its contents cannot be read") from None
        if grant.purpose != purpose:
            raise LinkError("this link was made for something else")
        if now >= grant.expires_at:
            raise LinkError(
                f"this link expired on {grant.expires_at:%Y-%m-%d %H:%M} UTC; the next reminder brings a fresh one",
                code="expired",
            )
        return grant

    def url(self, purpose: str, token: str) -> str:
        """The full address of a link (a path when ``server.public_url`` is not set)."""
        path = {"task": "/tasks/t/", "approval": "/approvals/a/"}[purpose] + quote(token, safe="")
        return (self.public_url or "") + path

    def task_url(self, case_id: str, task_id: str, recipient: str, now: datetime) -> str:
        return self.url("task", self.token("task", f"{case_id}/{task_id}", recipient, now))

    def approval_url(self, request_id: str, recipient: str, now: datetime) -> str:
        return self.url("approval", self.token("approval", request_id, recipient, now))


def link_settings(config: Any) -> LinkSettings:
    where = str(getattr(config, "source", None) or "config")
    try:
        return LinkSettings.model_validate(dict(getattr(config, "server", None) or {}))
    except ValidationError as exc:
        from ..config._config import format_validation_error

        raise ConfigError(format_validation_error(exc, where, "server")) from None


def links_for(config: Any) -> Links | None:
    """The configured :class:`Links`, or None when ``server.links_secret`` is not set (links off)."""
    settings = link_settings(config)
    if not settings.links_secret:
        return None
    if not settings.links_secret.startswith(("env:", "file:")):
        raise ConfigError("server.links_secret: must be a reference (env:NAME or file:PATH), never the secret itself")
    try:
        secret = resolve_reference(settings.links_secret)
    except SecretError as exc:
        raise ConfigError(f"server.links_secret: {exc}") from None
    if len(secret.reveal()) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"server.links_secret: the secret is too short ({len(secret.reveal())} characters; use at least "
            f"{MIN_SECRET_CHARS} random ones, e.g. from `openssl rand -hex 32`)"
        )
    return Links(secret, settings.public_url, settings.link_days)
