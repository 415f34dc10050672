"""What the routes share: the objects an app sets up once its engine is open, on ``app.state.services``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from ..audit import TrustList
from ..config._secrets import Secret
from ..intake._intake import Intake
from ._limits import FailureLimiter, RateLimiter
from ._metrics import Metrics
from ._settings import ServerSettings

__all__ = ["Services", "ServicesDep", "services"]


@dataclass(frozen=True)
class Services:
    """The engine and what the server built around it."""

    engine: Any
    settings: ServerSettings
    signing_key: bytes
    sources: dict[str, dict[str, Any]]  # HR systems' own webhooks: name -> checked settings
    metrics: Metrics
    intake: Intake
    clock: Callable[[], datetime]
    rate_limiter: RateLimiter
    auditor_failures: FailureLimiter
    auditor_token: Secret | None = None  # None: the auditor pages are off
    auditor_trust: tuple[TrustList, str] | None = None  # pinned trust list and its name; None: the log's own


async def services(request: Request) -> Services:
    """The app's :class:`Services` (a dependency)."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(services)]
