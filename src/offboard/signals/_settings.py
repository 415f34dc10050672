"""The ``server.signals`` section: offboard as a Shared Signals transmitter and receiver."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config._config import format_validation_error
from ..errors import ConfigError

__all__ = ["SignalsSettings", "ReceiverSettings", "TransmitterSettings", "signals_settings"]


def _reference(value: str | None) -> str | None:
    if value is not None and not value.startswith(("env:", "file:")):  # never echo it: it may be the secret
        raise ValueError("must be a reference (env:NAME or file:PATH), never the secret itself")
    return value


def _issuer_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError("must be an https URL with no query or fragment (http only for local tests)")
    return value.rstrip("/")


class ReceiverSettings(BaseModel):
    """An app that receives offboard's signals.

    Either it manages its own streams through the stream management API with ``token``, or (a
    receiver such as Okta that only takes pushed SETs) offboard pushes to ``push_to`` on a stream
    configured here, about every person, or both.
    """

    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(
        default=None, description="bearer token this receiver presents to the management API: env:NAME or file:PATH"
    )
    audience: str | list[str] | None = Field(default=None, description="the SETs' aud; default the receiver's name")
    max_streams: int = Field(default=5, ge=1, le=100, description="streams this receiver may create")
    push_to: str | None = Field(
        default=None, description="a push endpoint offboard delivers to on a configured stream (every person)"
    )
    push_authorization: str | None = Field(
        default=None, description="Authorization header value for push_to: env:NAME or file:PATH"
    )
    events: list[str] | None = Field(default=None, description="event type URIs for the configured stream; default all")

    @field_validator("token", "push_authorization")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        return _reference(value)

    @field_validator("push_to")
    @classmethod
    def _push_to(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1", "localhost")
        if not (parts.scheme == "https" and parts.hostname) and not loopback:
            raise ValueError("must be an https URL (http only to a loopback address)")
        return value

    @model_validator(mode="after")
    def _some_way_in(self) -> ReceiverSettings:
        if self.token is None and self.push_to is None:
            raise ValueError("give token (the receiver manages its streams) or push_to (a configured stream), or both")
        return self


class TransmitterSettings(BaseModel):
    """An identity provider whose signals offboard acts on (offboard as a receiver)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(description="the identity provider's issuer URL (its /.well-known/ssf-configuration)")
    audience: str | None = Field(default=None, description="the aud its SETs carry; default server.signals.issuer")
    push_token: str | None = Field(
        default=None, description="Authorization bearer token it sends when pushing to us: env:NAME or file:PATH"
    )
    management_token: str | None = Field(
        default=None, description="bearer token for its stream management API: env:NAME or file:PATH"
    )
    jwks_uri: str | None = Field(default=None, description="override the jwks_uri its configuration names")
    act_on: list[str] = Field(
        default_factory=lambda: ["account-disabled", "account-purged", "session-revoked"],
        description="event names that open or extend a case",
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _issuer_url(value)

    @field_validator("push_token", "management_token")
    @classmethod
    def _references(cls, value: str | None) -> str | None:
        return _reference(value)


class SignalsSettings(BaseModel):
    """``server.signals``: SSF 1.0 transmitter (receivers) and receiver (transmitters)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(description="offboard's issuer URL, as receivers reach it (https)")
    signing_key: str | None = Field(
        default=None,
        description="file:PATH of the PEM private key SETs are signed with; default <data_dir>/ssf-signing-key.pem",
    )
    tenant: dict[str, Any] | None = Field(
        default=None, description="subject identifier of the organization, sent as the complex subject's tenant"
    )
    receivers: dict[str, ReceiverSettings] = Field(default_factory=dict)
    transmitters: dict[str, TransmitterSettings] = Field(default_factory=dict)
    feed_seconds: float = Field(default=0.05, gt=0, le=10, description="how often new verified changes are read")
    push_timeout_seconds: float = Field(default=5, gt=0, le=60)
    push_concurrency: int = Field(default=8, ge=1, le=64, description="SETs pushed at once (one person's in order)")
    retry_max_seconds: float = Field(default=300, ge=1, le=86_400, description="longest wait between push retries")
    give_up_after_hours: float = Field(default=168, gt=0, le=24 * 90, description="a SET older than this stops")
    min_verification_interval: int = Field(default=10, ge=0, le=86_400, description="seconds between verifications")
    max_poll_events: int = Field(default=100, ge=1, le=10_000, description="SETs one poll response carries at most")
    poll_wait_seconds: float = Field(
        default=10, ge=0, le=60, description="how long a poll without returnImmediately waits"
    )

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _issuer_url(value)

    @field_validator("signing_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("file:"):
            raise ValueError("must be file:PATH (a PEM private key), never the key itself")
        return value


def signals_settings(raw: dict[str, Any] | None, where: str) -> SignalsSettings | None:
    """The checked ``server.signals`` section, or None when absent; ConfigError naming the key otherwise."""
    if not raw:
        return None
    try:
        return SignalsSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where, "server.signals")) from None
