"""Shared Signals (OpenID SSF 1.0, CAEP 1.0, RISC): offboard tells apps, and hears identity providers.

As a transmitter (``offboard serve`` with ``server.signals.receivers``) offboard publishes its
configuration metadata and JWKS, runs the stream management API, and sends CAEP
``session-revoked``, RISC ``account-disabled`` / ``account-enabled`` and CAEP
``credential-change`` SETs by push (RFC 8935) or poll (RFC 8936) from a durable outbox. As a
receiver (``server.signals.transmitters``) it verifies an identity provider's SETs and opens
cases through the HR intake. docs/shared-signals.md is the guide.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._keys import SigningKey
from ._receiver import Receiver, configuration_url
from ._routes import router
from ._settings import SignalsSettings, signals_settings
from ._subjects import (
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    ACCOUNT_PURGED,
    CREDENTIAL_CHANGE,
    SESSION_REVOKED,
    VERIFICATION,
)
from ._transmitter import POLL, PUSH, Transmitter

__all__ = [
    "Signals",
    "open_signals",
    "router",
    "SignalsSettings",
    "Transmitter",
    "Receiver",
    "SigningKey",
    "configuration_url",
    "PUSH",
    "POLL",
    "SESSION_REVOKED",
    "CREDENTIAL_CHANGE",
    "ACCOUNT_DISABLED",
    "ACCOUNT_ENABLED",
    "ACCOUNT_PURGED",
    "VERIFICATION",
]


@dataclass
class Signals:
    """What ``offboard serve`` runs for shared signals: either side may be absent."""

    settings: SignalsSettings
    transmitter: Transmitter | None
    receiver: Receiver | None

    def start(self) -> None:
        if self.transmitter is not None:
            self.transmitter.start()
        if self.receiver is not None:  # streams at identity providers, without delaying start-up
            threading.Thread(target=self.receiver.subscribe_all, name="offboard-ssf-subscribe", daemon=True).start()

    def stop(self) -> None:
        if self.transmitter is not None:
            self.transmitter.stop()
        if self.receiver is not None:
            self.receiver.close()


def open_signals(engine: Any, raw: dict[str, Any] | None, intake: Any, clock: Any, data_dir: Path) -> Signals | None:
    """Check ``server.signals`` and build its transmitter and receiver; None when it is not configured."""
    where = str(getattr(engine.config, "source", None) or "config")
    settings = signals_settings(raw, where)
    if settings is None:
        return None
    transmitter = None
    if settings.receivers:
        key = SigningKey.load(settings.signing_key, data_dir)
        transmitter = Transmitter(engine, settings, key, clock=clock)
    receiver = None
    if settings.transmitters:
        receiver = Receiver(settings, lambda event, digest: intake.submit(event, digest, None).result())
    return Signals(settings, transmitter, receiver)
