"""Per-client limits of the unauthenticated endpoints: a request rate, and failed auditor-token attempts.

A client is its address (``request.client.host``), or the last address in ``server.trusted_proxy_header``
when the operator names one (a reverse proxy that sets or appends it). Both tables are bounded: a client
whose bucket has filled up again (or whose failures have aged out) is forgotten, and beyond ``MAX_CLIENTS``
the least recently seen client is dropped first.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from ..config._logging import get_logger

__all__ = ["MAX_CLIENTS", "FailureLimiter", "Limited", "RateLimiter", "client_of", "rate_limited", "retry_after"]

log = get_logger("offboard.web")

#: The most clients each table remembers; beyond it the least recently seen is forgotten.
MAX_CLIENTS = 10_000
#: The longest client key kept (a forwarded header is the client's to fill; an address is shorter).
MAX_KEY_CHARS = 64


def client_of(request: Request, trusted_header: str | None) -> str:
    """Who a request counts against: the trusted proxy header's last address, else the peer address."""
    if trusted_header:
        forwarded = request.headers.get(trusted_header, "").rsplit(",", 1)[-1].strip()
        if forwarded:
            return forwarded[:MAX_KEY_CHARS]
    return (request.client.host if request.client else "unknown")[:MAX_KEY_CHARS]


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per client: ``burst`` requests at once, refilled at ``per_minute`` a minute."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float], max_clients: int = MAX_CLIENTS) -> None:
        self.rate, self.burst, self.clock, self.max_clients = per_minute / 60.0, float(burst), clock, max_clients
        self.buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one request of ``client``: 0 when allowed, else the seconds until one is (for Retry-After)."""
        now = self.clock()
        bucket = self.buckets.pop(client, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.at) * self.rate)
        bucket.at = now
        self.buckets[client] = bucket  # most recently seen last
        self._forget(now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    def _forget(self, now: float) -> None:
        """Drop buckets full again (the same as none), oldest first, and any beyond the cap."""
        full_after = self.burst / self.rate
        while self.buckets:
            client, oldest = next(iter(self.buckets.items()))
            if len(self.buckets) <= self.max_clients and now - oldest.at < full_after:
                break
            del self.buckets[client]


class FailureLimiter:
    """Failed attempts per client: after ``limit`` within ``window`` seconds, refused until the oldest ages out."""

    def __init__(
        self, limit: int, clock: Callable[[], float], window: float = 60.0, max_clients: int = MAX_CLIENTS
    ) -> None:
        self.limit, self.clock, self.window, self.max_clients = limit, clock, window, max_clients
        self.failures: OrderedDict[str, deque[float]] = OrderedDict()

    def locked(self, client: str) -> float:
        """0 when ``client`` may try, else the seconds until it may (for Retry-After)."""
        now = self.clock()
        self._forget(now)
        times = self.failures.get(client)
        if times is None:
            return 0.0
        while times and now - times[0] >= self.window:
            times.popleft()
        return self.window - (now - times[0]) if len(times) >= self.limit else 0.0

    def failed(self, client: str) -> None:
        """Count one failed attempt of ``client``."""
        now = self.clock()
        times = self.failures.pop(client, None) or deque(maxlen=self.limit)
        times.append(now)
        self.failures[client] = times  # most recently failed last
        self._forget(now)

    def _forget(self, now: float) -> None:
        while self.failures:
            client, times = next(iter(self.failures.items()))
            if len(self.failures) <= self.max_clients and now - times[-1] < self.window:
                break
            del self.failures[client]


def retry_after(seconds: float) -> str:
    """The Retry-After value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class Limited(Exception):
    """A request refused with 429 (answered by the app's handler, as JSON or, on /audit/, a page for a browser)."""

    def __init__(self, code: str, message: str, seconds: float) -> None:
        super().__init__(message)
        self.code, self.message, self.seconds = code, message, seconds


async def rate_limited(request: Request) -> None:
    """A router dependency: 429 when the client is over ``server.client_rate_per_minute`` (one log line)."""
    services = request.app.state.services
    client = client_of(request, services.settings.trusted_proxy_header)
    wait = services.rate_limiter.take(client)
    if wait:
        log.warning("rate limited", client=client, path=request.url.path, retry_after=retry_after(wait))
        raise Limited(
            "rate_limited",
            f"too many requests from this client; retry after {retry_after(wait)} s "
            "(server.client_rate_per_minute, server.client_burst)",
            wait,
        )
