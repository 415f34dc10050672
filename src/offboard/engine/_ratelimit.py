"""Per-system token buckets, shared by every thread that talks to that system."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``pause`` honours Retry-After."""

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
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds callers spent waiting, for metrics

    def acquire(self, sleep: Callable[[float], None] = time.sleep) -> float:
        """Take one token, sleeping as needed; returns the seconds waited."""
        total = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = self._paused_until - now
                if delay <= 0:
                    if self.rate is None:
                        return total
                    self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                    self._stamp = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return total
                    delay = (1 - self._tokens) / self.rate
                self.waited += delay
            total += delay
            sleep(delay)

    def pause(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (the system said Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._tokens = 0.0
