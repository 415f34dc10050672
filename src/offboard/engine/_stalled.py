"""A request that has stalled gives its system's concurrency slot to another call until it answers.

A system's concurrency cap (``connectors.<name>.concurrency``) bounds the calls served at once.
A request that hangs (the vendor never answers and the connection is dropped, or the client's
timeout ends it) would hold its slot all that while: at 5% timeouts with a 1 s hang, Google's ten
slots spent more than half their time on requests that were lost, and its cleanup took twice as
long as without faults (``docs/performance.md`` finding 7). So each request sent inside an
engine call is watched: once it has taken ``factor`` times the system's median latency (over its
last successful requests; ``floor`` seconds at least, and nothing is lent before ``warmup``
requests have answered), its slot is lent to the next call; when it answers at last, its call
takes a slot again before it goes on (so the call itself never runs past the cap, and at most
the stalled requests are in flight beyond it). At most the cap is lent at once, so no more than
twice the cap is ever in flight, and only while the extra requests are ones that took four
times as long as their peers: a vendor that slows down for everyone raises the median (of its
last 200 answers, worked out again every ten) and so stops the lending. The token bucket still
paces every request.

Half the cap was the limit before: at 5% timeouts with a 1 s hang, Google answered about 270
requests a second, so about 14 of its requests hung at any moment, and with five of them lent
the other nine held nine of its ten slots (``benchmarks/bench_faults.py``: 728 requests lent,
Google's last action 151 s against 89 s without faults; with the cap, 1,110 lent).
"""

from __future__ import annotations

import heapq
import itertools
import statistics
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CallSlot", "StalledRequests"]

_RUNNING, _LENT, _DONE = 0, 1, 2


class CallSlot:
    """One call's hold on one of its system's slots: given back while the call cannot use it (a backoff, a
    stalled request) and taken again before the call goes on. Giving twice gives once (a request inside a
    request, a backoff while a stalled request's slot is lent), so the cap is never released past its size."""

    __slots__ = ("slots", "cap", "held", "lock")

    def __init__(self, slots: Any, cap: int = 1):
        self.slots = slots
        self.cap = cap  # the system's concurrency cap: at most that many are lent at once
        self.held = True
        self.lock = threading.Lock()

    def give(self) -> bool:
        with self.lock:
            if not self.held:
                return False
            self.held = False
        self.slots.release()
        return True

    def take(self) -> None:
        self.slots.acquire()
        with self.lock:
            self.held = True


class _Watch:
    """One request in flight, holding its call's slot until it answers or is lent out."""

    __slots__ = ("slot", "state", "lock")

    def __init__(self, slot: CallSlot):
        self.slot = slot
        self.state = _RUNNING
        self.lock = threading.Lock()

    def lend(self) -> bool:
        with self.lock:
            if self.state != _RUNNING or not self.slot.give():
                return False
            self.state = _LENT
            return True

    def finish(self) -> bool:
        """The request answered; True if its slot had been lent (it is taken again first)."""
        with self.lock:
            lent = self.state == _LENT
            self.state = _DONE
        if lent:  # the call goes on under the cap: it waits for a slot like any other call
            self.slot.take()
        return lent


class StalledRequests:
    """Watches the requests of engine calls; lends the slot of one that stalled (see the module's docs)."""

    def __init__(
        self,
        factor: float = 4.0,
        floor: float = 0.05,
        warmup: int = 20,
        window: int = 200,
        clock: Callable[[], float] = time.monotonic,
        tick: float = 0.01,
    ):
        self.factor, self.floor, self.warmup, self.tick = factor, floor, warmup, tick
        self._clock = clock
        self._window = window
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, _Watch, str]] = []
        self._seq = itertools.count()
        self._latencies: dict[str, deque[float]] = {}
        self._limits: dict[str, float] = {}
        self._answered: Counter[str] = Counter()
        self._lending: Counter[str] = Counter()  # per system: slots lent right now
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.lent: Counter[str] = Counter()  # per system: requests whose slot was lent, for metrics

    def limit(self, system: str) -> float | None:
        """Seconds after which a request of ``system`` is taken as stalled (None: too few answers yet)."""
        return self._limits.get(system)

    @contextmanager
    def watch(self, system: str, slot: CallSlot | None) -> Iterator[None]:
        """Around one request sent while its call holds ``slot`` (None: outside a call's slot, not watched)."""
        if slot is None:
            yield
            return
        start = self._clock()
        watch = _Watch(slot)
        limit = self._limits.get(system)
        if limit is not None:
            with self._lock:
                heapq.heappush(self._due, (start + limit, next(self._seq), watch, system))
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="offboard-stalled", daemon=True)
                    self._thread.start()
            self._wake.set()
        answered = False
        try:
            yield
            answered = True
        finally:
            if watch.finish():
                with self._lock:
                    self._lending[system] -= 1
            if answered:
                self._learn(system, self._clock() - start)

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def _learn(self, system: str, seconds: float) -> None:
        with self._lock:
            seen = self._latencies.get(system)
            if seen is None:
                seen = self._latencies[system] = deque(maxlen=self._window)
            seen.append(seconds)
            self._answered[system] += 1
            answered = self._answered[system]
            if answered >= self.warmup and (answered == self.warmup or answered % 10 == 0):
                self._limits[system] = max(self.floor, self.factor * statistics.median(seen))

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                now = self._clock()
                due = []
                while self._due and self._due[0][0] <= now:
                    due.append(heapq.heappop(self._due))
            for item in due:
                _, _, watch, system = item
                with self._lock:
                    full = self._lending[system] >= max(1, watch.slot.cap)
                    if full:  # never more than twice the cap in flight: this one waits its turn
                        if watch.state == _RUNNING:
                            heapq.heappush(self._due, (now + self.tick, next(self._seq), watch, system))
                        continue
                    if watch.lend():
                        self.lent[system] += 1
                        self._lending[system] += 1
            with self._lock:
                waiting = bool(self._due)
            if waiting:
                time.sleep(self.tick)
            else:
                self._wake.wait()
                self._wake.clear()
