"""The ``server:`` section of the configuration, and the webhook signing key it names."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config._config import format_validation_error, time_of_day
from ..config._secrets import Secret
from ..errors import ConfigError

__all__ = ["MIN_KEY_BYTES", "MiB", "ServerSettings", "signing_key"]

MiB = 1024 * 1024
#: The shortest webhook signing key accepted, in bytes (``openssl rand -base64 32`` gives 32).
MIN_KEY_BYTES = 24


class ServerSettings(BaseModel):
    """The ``server:`` section of the configuration."""

    model_config = ConfigDict(extra="forbid")

    webhook_secret: str = Field(
        description="Standard Webhooks signing secret: env:NAME or file:PATH (value whsec_<base64>)"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=MiB, ge=1024, le=64 * MiB)
    read_timeout_seconds: float = Field(
        default=10, gt=0, le=300, description="time a client has to send a whole request body; then 408"
    )
    keep_alive_seconds: int = Field(
        default=5, ge=1, le=300, description="an idle keep-alive connection is closed after"
    )
    max_connections: int = Field(
        default=100, ge=1, le=100_000, description="concurrent connections and requests; beyond it, 503 at once"
    )
    client_rate_per_minute: int = Field(
        default=600,
        ge=1,
        le=10_000_000,
        description="requests a minute per client on /v1/, /audit/ and the task pages; then 429",
    )
    client_burst: int = Field(default=60, ge=1, le=1_000_000, description="requests a client may send at once")
    trusted_proxy_header: str | None = Field(
        default=None, description="header a reverse proxy sets to the client address (its last entry counts)"
    )
    auditor_failures_per_minute: int = Field(
        default=10, ge=1, le=10_000, description="wrong auditor tokens a client may send a minute; then 429"
    )
    header_timeout_seconds: float = Field(
        default=10, gt=0, le=300, description="time a client has to send a request line and headers; then 408"
    )
    max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, le=1024 * 1024, description="largest request line and headers uvicorn reads"
    )
    tolerance_seconds: int = Field(
        default=300, ge=1, le=3600, description="allowed distance of webhook-timestamp from now"
    )
    poll_seconds: float = Field(default=1.0, gt=0, le=60, description="how often the worker looks for due work")
    day_ends_at: str = Field(default="23:59:59", description="local time a date-only effective date takes effect")
    default_timezone: str = Field(
        default="UTC", description="zone for local times when neither the event nor the person has one"
    )
    sources: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="HR systems' own webhooks: bamboohr, hibob, or a plugin's"
    )
    event_sources: list[str] = Field(
        default_factory=list,
        description="sources of /v1/events counted under their own metrics label (besides the people sources)",
    )
    auditor_token: str | None = Field(
        default=None,
        description="bearer token for the read-only /audit/ pages: env:NAME or file:PATH; unset = pages off",
    )
    signals: dict[str, Any] = Field(
        default_factory=dict, description="Shared Signals (SSF) transmitter and receiver; see docs/shared-signals.md"
    )
    auditor_trusted_keys: str | None = Field(
        default=None, description="pinned trust list the /audit/ pages verify with; default the log's own copy"
    )

    links_secret: str | None = Field(
        default=None, description="key that signs personal task and approval links: env:NAME or file:PATH; unset = off"
    )
    public_url: str | None = Field(default=None, description="the address people reach this server at, for links")
    link_days: int = Field(default=14, ge=1, le=90, description="days a task or approval link stays valid")
    oidc: dict[str, Any] | None = Field(
        default=None, description="OpenID Connect sign-in for /tasks/: issuer, client_id, client_secret (checklists.md)"
    )

    @field_validator("day_ends_at")
    @classmethod
    def _time(cls, value: str) -> str:
        return time_of_day(value)

    @field_validator("webhook_secret", "auditor_token", "links_secret")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("env:", "file:")):  # never echo it: it may be the secret itself
            raise ValueError("must be a reference (env:NAME or file:PATH), never the secret itself")
        return value

    @classmethod
    def from_config(cls, config: Any) -> ServerSettings:
        where = str(config.source or "config")
        if not config.server.get("webhook_secret"):
            raise ConfigError(
                f"{where}: server.webhook_secret: required (env:NAME or file:PATH holding a whsec_<base64> secret)"
            )
        try:
            return cls.model_validate(config.server)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, where, "server")) from None


def signing_key(secret: Secret | str, where: str = "server.webhook_secret") -> bytes:
    """The HMAC key of a Standard Webhooks secret ``whsec_<base64>`` (the prefix is optional)."""
    value = secret.reveal() if isinstance(secret, Secret) else secret
    value = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(
            f"{where}: the secret is not base64 (expected whsec_ followed by base64, e.g. from "
            "`openssl rand -base64 32`)"
        ) from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{where}: the secret is too short ({len(key)} bytes; use at least {MIN_KEY_BYTES} random bytes)"
        )
    return key
