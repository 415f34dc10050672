"""Per-system token buckets, shared by every thread that talks to that system."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``pause`` honours Retry-After.

    A caller that finds the bucket empty takes its token ahead of time (the count goes below
    zero: the callers queued before it) and sleeps once, until its turn. Waiters go in the order
    they came and nobody wakes only to find that another took the token: with dozens of threads
    behind one vendor limit, re-checking after each sleep woke all of them for every token.
    A pause (Retry-After) cancels the tokens taken ahead: their callers wait it out and queue again.
    """

    def __init__(
        self, system: str, rate: float | None, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.system = system
        self.rate = rate
        self.burst = max(1, burst or (int(rate) if rate and rate >= 1 else 1))
        self._clock = clock
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._paused_until = 0.0
        self._pauses = 0  # how many pauses were asked for: a caller's token taken ahead before one is void
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds callers spent waiting, for metrics

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Take one token, sleeping as needed; returns the seconds waited."""
        total = 0.0
        while True:
            ahead: int | None = None  # the pause count when this caller took its token ahead of time
            with self._lock:
                now = self._clock()
                delay = self._paused_until - now
                if delay <= 0:
                    if self.rate is None:
                        return total
                    self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                    self._stamp = now
                    self._tokens -= 1
                    if self._tokens >= 0:
                        return total
                    delay, ahead = -self._tokens / self.rate, self._pauses
                self.waited += delay
            total += delay
            sleep(delay)
            if ahead is not None:
                with self._lock:
                    if self._pauses == ahead:  # no Retry-After while it slept: its turn has come
                        return total

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (the system said Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._tokens = 0.0  # the tokens taken ahead are cancelled: their callers queue again after the pause
            self._pauses += 1
