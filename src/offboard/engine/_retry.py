"""The retry policy of connector calls: what is retried, how long to wait, when to give up.

Only ``RateLimited`` and ``TransientError`` are retried; every other error is final at once
(``AuthError``, ``PermanentError``, ``NotFound``, ...). The wait is the system's Retry-After
when it said one, else an exponential backoff from 0.2 s; both are capped at
``limits.max_retry_wait``. Rate limits spend a time budget (``limits.max_rate_limited_wait``
seconds of waiting in all), other failures the attempt budget (``limits.max_attempts``).
The wait is not slept here: ``pause`` holds back every caller of the system (or of the
rate-limit lane the error names), and the next attempt waits for its token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
import tenacity

from ..config._config import Limits
from ..errors import ConnectorError, OffboardError, RateLimited

__all__ = ["call_with_retries", "backoff"]

log = structlog.get_logger("offboard.engine")


def backoff(attempt: int, limits: Limits) -> float:
    """Seconds to wait after failed attempt number ``attempt`` when the system named no Retry-After."""
    return min(limits.max_retry_wait, 0.2 * 2 ** (min(attempt, 20) - 1))


def call_with_retries(
    attempt: Callable[[], Any],
    *,
    system: str,
    limits: Limits,
    pause: Callable[[str | None, float], None],
    sleep: Callable[[float], None],
) -> tuple[Any, int]:
    """``attempt()`` until it succeeds or the policy gives up; the result and the number of attempts.

    ``pause(lane, seconds)`` holds the system's callers back before the next attempt. A
    ``ConnectorError`` leaves with ``system`` filled in and ``attempts`` set; any other
    exception that is not an ``OffboardError`` (a connector bug, an unmapped SDK error)
    leaves as a ``ConnectorError`` naming it, so it is recorded and never crashes the case.
    """
    attempts = errors = 0
    rate_limited_wait = 0.0

    def counted() -> Any:
        nonlocal attempts
        attempts += 1
        return attempt()

    def stop(state: tenacity.RetryCallState) -> bool:
        """Rate limits spend the time budget, other failures the attempt budget."""
        nonlocal errors
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited):
            return rate_limited_wait >= limits.max_rate_limited_wait
        errors += 1
        return errors >= limits.max_attempts

    def wait(state: tenacity.RetryCallState) -> float:
        nonlocal rate_limited_wait
        exc = state.outcome.exception() if state.outcome else None
        delay = getattr(exc, "retry_after", None) or backoff(state.attempt_number, limits)
        delay = min(float(delay), limits.max_retry_wait)
        if isinstance(exc, RateLimited):
            rate_limited_wait += delay
        pause(getattr(exc, "lane", None), delay)  # every caller of this system (or lane) waits
        log.info("retrying", system=system, error=str(exc), delay=delay, attempt=state.attempt_number)
        return 0.0

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, ConnectorError) and e.retryable),
        stop=stop,
        wait=wait,
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(counted), attempts
    except ConnectorError as exc:
        exc.system = exc.system or system
        exc.attempts = attempts  # type: ignore[attr-defined]
        raise
    except OffboardError:
        raise
    except Exception as exc:
        err = ConnectorError(f"unexpected {type(exc).__name__}: {exc}", system=system)
        err.attempts = attempts  # type: ignore[attr-defined]
        raise err from exc
