"""The retry policy of connector calls: what is retried, how long to wait, who waits, when to give up.

Only ``RateLimited`` and ``TransientError`` are retried; every other error is final at once
(``AuthError``, ``PermanentError``, ``NotFound``, ...). Two kinds of wait, kept apart:

- **A failure of this call** (a 5xx, a timeout, a reset) is this call's business: it sleeps a
  jittered exponential backoff worked out from *its own* count of such failures
  (``limits.min_retry_wait`` doubling up to ``limits.max_retry_wait``, each wait between half
  and all of that, never below the minimum). Nobody else waits.
- **The vendor's rate-limit answer** (``RateLimited``: 429, Google's and GitHub's quota 403s, or
  any error carrying a Retry-After) is everybody's business: ``pause`` holds back every caller
  of the system (or of the rate-limit lane the error names) for exactly the time the vendor
  asked, or, when it named none, for a backoff worked out from this call's count of rate limits.
  The next attempt then waits for its token like every other caller.

Every call has a time budget, ``limits.action_budget`` seconds from its first attempt: when the
next wait would go past it, the call gives up with its last error (marked ``budget_spent``), so
a failing vendor makes the action fail (owed, for a later run) instead of spinning. The attempt
budget ``limits.max_attempts`` bounds the failures of the call itself, and
``limits.max_rate_limited_wait`` the seconds it may spend paused on rate limits.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import structlog

from ..config._config import Limits
from ..errors import ConnectorError, OffboardError, RateLimited

__all__ = ["call_with_retries", "backoff"]

log = structlog.get_logger("offboard.engine")


def backoff(attempt: int, limits: Limits, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after this call's failure number ``attempt``: jittered, capped, at least the minimum.

    The ceiling doubles from ``limits.min_retry_wait`` up to ``limits.max_retry_wait``; the wait
    is drawn between half the ceiling and all of it, so callers that failed together spread out.
    """
    ceiling = min(limits.max_retry_wait, limits.min_retry_wait * 2 ** (min(max(attempt, 1), 40) - 1))
    return max(min(limits.min_retry_wait, limits.max_retry_wait), ceiling * (0.5 + 0.5 * rng()))


def call_with_retries(
    attempt: Callable[[], Any],
    *,
    system: str,
    limits: Limits,
    pause: Callable[[str | None, float], None],
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
) -> tuple[Any, int]:
    """``attempt()`` until it succeeds or the policy gives up; the result and the number of attempts.

    ``pause(lane, seconds)`` holds every caller of the system (or lane) back before the next
    attempt; ``sleep`` is this call's own wait; ``clock`` measures the time budget (it must
    advance with ``sleep`` and with the bucket's waits, as the engine's do). A
    ``ConnectorError`` leaves with ``system`` filled in and ``attempts`` set; any other
    exception that is not an ``OffboardError`` (a connector bug, an unmapped SDK error)
    leaves as a ``ConnectorError`` naming it, so it is recorded and never crashes the case.
    """
    start = clock()
    attempts = failures = rate_limits = 0
    rate_limited_wait = 0.0
    while True:
        attempts += 1
        try:
            return attempt(), attempts
        except ConnectorError as exc:
            error = exc
        except OffboardError:
            raise
        except Exception as exc:
            err = ConnectorError(f"unexpected {type(exc).__name__}: {exc}", system=system)
            err.attempts = attempts  # type: ignore[attr-defined]
            raise err from exc
        error.system = error.system or system
        error.attempts = attempts  # type: ignore[attr-defined]
        if not error.retryable:
            raise error
        retry_after = getattr(error, "retry_after", None)
        shared = isinstance(error, RateLimited) or bool(retry_after)
        if shared:
            rate_limits += 1
            delay = float(retry_after) if retry_after else backoff(rate_limits, limits, rng)
        else:
            failures += 1
            if failures >= limits.max_attempts:
                raise _gave_up(error, f"{failures} failures (limits.max_attempts)")
            delay = backoff(failures, limits, rng)
        elapsed = clock() - start
        if elapsed + delay > limits.action_budget:
            raise _gave_up(error, f"{elapsed:.0f} s spent, the next wait of {delay:.0f} s is past limits.action_budget")
        if shared:
            rate_limited_wait += delay
            if rate_limited_wait > limits.max_rate_limited_wait:
                raise _gave_up(error, f"{rate_limited_wait:.0f} s rate-limited (limits.max_rate_limited_wait)")
        log.info("retrying", system=system, error=str(error), delay=round(delay, 3), attempt=attempts, shared=shared)
        if shared:
            pause(getattr(error, "lane", None), delay)  # every caller of this system (or lane) waits
        else:
            sleep(delay)  # only this call waits


def _gave_up(error: ConnectorError, why: str) -> ConnectorError:
    """``error``, marked as the last of a call that gave up, and saying why."""
    error.budget_spent = True  # type: ignore[attr-defined]
    error.args = (f"{error.args[0] if error.args else error} (gave up after {error.attempts} attempts: {why})",)  # type: ignore[attr-defined]
    return error
