"""Knobs of a simulator: latency, rate limits and injected faults, reproducible from a seed."""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

__all__ = ["Knobs", "Limit", "Limiter", "RequestLog", "LogEntry", "FaultPlan"]


@dataclass
class Knobs:
    """Per-system behaviour; change any field at runtime (``sim.knobs.latency_ms = 50``).

    Rates are probabilities per request in [0, 1]. ``window_scale`` multiplies every
    rate-limit window (0.01 makes "50 per minute" into "50 per 0.6 s") so benchmarks can
    run at vendor limits without waiting hours.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_limits: bool = True
    window_scale: float = 1.0
    error_rate: float = 0.0  # 5xx answers
    timeout_rate: float = 0.0  # hang timeout_seconds, then drop the connection
    reset_rate: float = 0.0  # drop the connection with a TCP reset, no answer
    storm_rate: float = 0.0  # start a 429 storm: requests are throttled for 1-5 s, at most storm_length of them
    storm_length: int = 20
    lie_rate: float = 0.0  # acknowledge a write without applying it
    timeout_seconds: float = 30.0
    # Largest page any listing answers, whatever the client asks for (0: the vendor's own maximum).
    # Small by default so every listing in the tests paginates, as a real tenant's would.
    page_cap: int = 4

    def update(self, **changes: Any) -> None:
        """Set several knobs at once, refusing unknown names."""
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown sandbox knob {name!r}; known: {', '.join(sorted(known))}")
            setattr(self, name, value)

    def page(self, asked: int) -> int:
        """The page size to answer for a request that asked for ``asked`` items."""
        return max(1, min(asked, self.page_cap)) if self.page_cap > 0 else max(1, asked)

    @property
    def faulty(self) -> bool:
        return bool(self.error_rate or self.timeout_rate or self.reset_rate or self.storm_rate or self.lie_rate)


@dataclass
class Limit:
    """``count`` requests per ``per`` seconds, with a burst of ``burst`` (default ``count``)."""

    count: float
    per: float
    burst: float | None = None

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else self.count


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self, tokens: float, stamp: float):
        self.tokens = tokens
        self.stamp = stamp


class Limiter:
    """Token buckets keyed by (limit name, key). Not locked: each simulator runs on one event loop."""

    def __init__(self, limits: dict[str, Limit], knobs: Knobs):
        self.limits = limits
        self.knobs = knobs
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        #: The time the buckets refill by; a test may stop it to count a burst exactly.
        self.clock: Callable[[], float] = time.monotonic

    def take(self, name: str, key: str = "", cost: float = 1.0, now: float | None = None) -> float:
        """Spend ``cost`` tokens; return 0 when allowed, else the seconds until it would be."""
        limit = self.limits.get(name)
        if limit is None or not self.knobs.rate_limits:
            return 0.0
        now = self.clock() if now is None else now
        rate = limit.count / (limit.per * self.knobs.window_scale)
        cap = limit.capacity
        bucket = self._buckets.get((name, key))
        if bucket is None:
            bucket = self._buckets[(name, key)] = _Bucket(cap, now)
        else:
            bucket.tokens = min(cap, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return max((cost - bucket.tokens) / rate, 0.001)

    def remaining(self, name: str, key: str = "") -> float:
        """Tokens left in a bucket (capacity when never used)."""
        limit = self.limits.get(name)
        if limit is None:
            return math.inf
        bucket = self._buckets.get((name, key))
        if bucket is None:
            return limit.capacity
        rate = limit.count / (limit.per * self.knobs.window_scale)
        return min(limit.capacity, bucket.tokens + (self.clock() - bucket.stamp) * rate)

    def reset(self) -> None:
        """Refill every bucket."""
        self._buckets.clear()


class LogEntry(NamedTuple):
    """One request as the simulator received it."""

    time: float
    method: str
    path: str
    query: str
    status: int
    fault: str  # "" or the injected fault: error, timeout, reset, storm, lie, forced
    body: bytes
    batch: str  # "" or the id of the batch request this was part of


class RequestLog:
    """A bounded log of requests; appending is one tuple and a deque append."""

    def __init__(self, maxlen: int = 200_000):
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)
        self.total = 0

    def add(self, entry: LogEntry) -> None:
        self._entries.append(entry)
        self.total += 1

    def entries(
        self, method: str | None = None, path: str | None = None, contains: str | None = None
    ) -> list[LogEntry]:
        """Entries filtered by method, exact path, or a substring of the path."""
        out = []
        for e in list(self._entries):
            if method and e.method != method.upper():
                continue
            if path is not None and e.path != path:
                continue
            if contains is not None and contains not in e.path:
                continue
            out.append(e)
        return out

    def count(self, method: str | None = None, contains: str | None = None) -> int:
        return len(self.entries(method=method, contains=contains))

    def writes(self) -> list[LogEntry]:
        """Entries with a write method (POST, PUT, PATCH, DELETE)."""
        return [e for e in list(self._entries) if e.method in ("POST", "PUT", "PATCH", "DELETE")]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


@dataclass
class FaultPlan:
    """Draws faults for each request from one seeded random stream."""

    knobs: Knobs
    seed: int
    rng: random.Random = field(init=False)
    storm_left: int = 0
    storm_until: float = 0.0  # by ``clock``: when the storm under way ends
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def storm_wait(self) -> float:
        """Seconds the storm under way has left: what its Retry-After says (at least a second, as headers round up)."""
        return max(self.storm_until - self.clock(), 1.0)

    def draw(self, write: bool) -> str:
        """The fault for the next request: '', 'error', 'timeout', 'reset', 'storm' or 'lie'.

        A storm is the vendor throttling everyone for a while (1-5 s drawn when it starts), and
        at most ``storm_length`` answers: each answer's Retry-After (where the vendor sends one)
        is the time the storm has left, so a client that waits as told finds it over. RFC 9110
        §10.2.3 (https://www.rfc-editor.org/rfc/rfc9110#field.retry-after): Retry-After says "how
        long the user agent ought to wait before making a follow-up request"; GitHub
        (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit):
        "you should not retry your request until after that many seconds has elapsed", and
        without a header "wait for at least one minute". A storm that went on answering 429 after
        the time its own Retry-After named would make the header a lie no vendor documents.
        """
        if self.storm_left > 0:
            if self.clock() < self.storm_until:
                self.storm_left -= 1
                return "storm"
            self.storm_left = 0  # its time is up
        k = self.knobs
        if not k.faulty:
            return ""
        r = self.rng.random()
        for name, rate in (
            ("reset", k.reset_rate),
            ("timeout", k.timeout_rate),
            ("error", k.error_rate),
            ("storm", k.storm_rate),
        ):
            if r < rate:
                if name == "storm":
                    self.storm_left = max(k.storm_length - 1, 0)
                    self.storm_until = self.clock() + 1.0 + self.rng.random() * 4
                return name
            r -= rate
        if write and k.lie_rate and self.rng.random() < k.lie_rate:
            return "lie"
        return ""

    def jitter(self) -> float:
        """Latency for the next request, in seconds."""
        k = self.knobs
        ms = k.latency_ms + (self.rng.random() * k.jitter_ms if k.jitter_ms else 0.0)
        return ms / 1000.0
