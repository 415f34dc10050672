"""The retry policy of connector calls: what is retried, how long to wait, who waits, when to give up.

Only ``RateLimited`` and ``TransientError`` are retried; every other error is final at once
(``AuthError``, ``PermanentError``, ``NotFound``, ...). Two kinds of wait, kept apart:

- **A failure of this call** (a 5xx, a timeout, a reset) is this call's business: it sleeps a
  jittered exponential backoff worked out from *its own* count of such failures (the first
  between a fifth of ``limits.min_retry_wait`` and all of it, then that minimum doubling up to
  ``limits.max_retry_wait``, each wait between half and all of that). Nobody else waits.
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

**Requests inside a call.** A call that sends several requests (list the groups, then remove
the person from them) would otherwise be retried whole, so at 20% failures per request a
five-request call succeeds a third of the time. A connector marks one idempotent request with
``self.request(send, lane=...)``; inside an engine call, ``retry_request`` retries that request
on its own under this same policy: its own failure count, jittered backoff (the call's
concurrency slot is given back while it sleeps), a Retry-After pausing the lane, each retry
taking a token, and the call's time budget counted from the call's start. A request that gives
up ends the call: its retries are spent, the call is not tried again for it. The retries are
added to the call's attempts. A request that stalls lends its call's concurrency slot to
another call until it answers (``_stalled``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import structlog

from ..config._config import Limits
from ..errors import ConnectorError, OffboardError, RateLimited

__all__ = ["call_with_retries", "backoff", "CallScope", "retry_request"]

log = structlog.get_logger("offboard.engine")


def backoff(attempt: int, limits: Limits, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait after this call's failure number ``attempt``: jittered, capped.

    The first wait is drawn between a fifth of ``limits.min_retry_wait`` and all of it ("full
    jitter", https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/): one 5xx
    or one lost request is most often bad luck, and the wait lies on its chain's path. After
    that the ceiling doubles up to ``limits.max_retry_wait``; the wait is drawn between half the
    ceiling and all of it, never below the minimum, so callers that failed together spread out.
    """
    lowest = min(limits.min_retry_wait, limits.max_retry_wait)
    if attempt <= 1:
        return lowest * (0.2 + 0.8 * rng())
    ceiling = min(limits.max_retry_wait, limits.min_retry_wait * 2 ** (min(attempt, 40) - 1))
    return max(lowest, ceiling * (0.5 + 0.5 * rng()))


def call_with_retries(
    attempt: Callable[[], Any],
    *,
    system: str,
    limits: Limits,
    pause: Callable[[str | None, float], None],
    sleep: Callable[[float], None],
    clock: Callable[[], float] = time.monotonic,
    rng: Callable[[], float] = random.random,
    started: float | None = None,
) -> tuple[Any, int]:
    """``attempt()`` until it succeeds or the policy gives up; the result and the number of attempts.

    ``pause(lane, seconds)`` holds every caller of the system (or lane) back before the next
    attempt; ``sleep`` is this call's own wait; ``clock`` measures the time budget (it must
    advance with ``sleep`` and with the bucket's waits, as the engine's do). A
    ``ConnectorError`` leaves with ``system`` filled in and ``attempts`` set; any other
    exception that is not an ``OffboardError`` (a connector bug, an unmapped SDK error)
    leaves as a ``ConnectorError`` naming it, so it is recorded and never crashes the case.
    ``started``: when the time budget began (a request inside a call: the call's start).
    An error that already gave up (a request retried inside the call) is final at once.
    """
    start = clock() if started is None else started
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
        if not error.retryable or getattr(error, "budget_spent", False):
            raise error
        retry_after = getattr(error, "retry_after", None)
        shared = isinstance(error, RateLimited) or bool(retry_after)
        if shared:
            rate_limits += 1
            delay = float(retry_after) if retry_after else backoff(rate_limits, limits, rng)
        elif getattr(error, "partial", False):  # a batch that got some items done: the rest waits the least
            delay = backoff(1, limits, rng)
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


@dataclass
class CallScope:
    """One engine call running on this thread: what a request retried inside it needs."""

    system: str
    started: float  # the call's first attempt, by the engine's clock: the time budget counts from here
    acquire: Callable[[str | None], None]  # take a token for one more request of a lane (None: the system's)
    pause: Callable[[str | None, float], None]  # hold back every caller of a lane (None: the system)
    sleep: Callable[[float], None]  # this call's own wait
    retries: int = 0  # requests sent again inside the call, for the call's attempt count
    #: Around each request: lends the call's concurrency slot while the request has stalled (``_stalled``).
    watch: Callable[[], AbstractContextManager[None]] | None = None
    slot: Any = None  # the call's hold on its system's slot while it runs (``_stalled.CallSlot``)


class Scopes(threading.local):
    """The engine call each thread is running, if any."""

    current: CallScope | None = None


def retry_request(
    send: Callable[[], Any],
    scope: CallScope | None,
    *,
    lane: str | None,
    idempotent: bool,
    limits: Limits,
    clock: Callable[[], float],
    rng: Callable[[], float] = random.random,
) -> Any:
    """``send()`` once, and again under the retry policy when it is idempotent and part of an engine call.

    Without a call in ``scope`` (a connector used directly, a set-up) or for a write that is not
    idempotent, it sends once: the call is the unit of retry then. The first attempt is the
    connector's own (after its ``throttle``); each retry first takes a token of ``lane``.
    """
    if scope is None:
        return send()
    watch = scope.watch

    def sent() -> Any:
        if watch is None:
            return send()
        with watch():
            return send()

    if not idempotent:
        return sent()
    tries = 0

    def attempt() -> Any:
        nonlocal tries
        tries += 1
        if tries > 1:
            scope.acquire(lane)
        return sent()

    try:
        result, _ = call_with_retries(
            attempt,
            system=scope.system,
            limits=limits,
            pause=lambda named, seconds: scope.pause(named or lane, seconds),
            sleep=scope.sleep,
            clock=clock,
            rng=rng,
            started=scope.started,
        )
    finally:  # a request that gave up is marked so (``_gave_up``): the call does not send it all again
        scope.retries += tries - 1
    return result


def _gave_up(error: ConnectorError, why: str) -> ConnectorError:
    """``error``, marked as the last of a call that gave up, and saying why."""
    error.budget_spent = True  # type: ignore[attr-defined]
    error.args = (f"{error.args[0] if error.args else error} (gave up after {error.attempts} attempts: {why})",)  # type: ignore[attr-defined]
    return error
