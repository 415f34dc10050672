"""Prometheus metrics of the server: counters the routes and the worker bump, gauges read at scrape time.

``GET /metrics`` (in ``offboard.web._health``) serves :func:`exposition` of an app's :class:`Metrics`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["CONTENT_TYPE", "OTHER_SOURCE", "STANDARD_SOURCE", "Metrics", "exposition"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The label of ``/v1/events`` refusals (the source is not known yet), and of every source not known in advance.
STANDARD_SOURCE, OTHER_SOURCE = "standard", "other"


class Metrics:
    """Prometheus metrics of one app (its own registry, so several apps can coexist)."""

    def __init__(self, engine: Any, sources: Iterable[str] = ()):
        self.registry = CollectorRegistry()
        self.sources = frozenset(sources) | {STANDARD_SOURCE, OTHER_SOURCE}
        self.received = Counter(
            "offboard_hr_events_received",
            "HR events accepted or recognized as duplicates",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "offboard_hr_events_rejected", "HR webhook deliveries refused", ["source", "reason"], registry=self.registry
        )
        self.outcomes = Counter(
            "offboard_hr_event_outcomes",
            "What became of HR events (unresolved = unknown person)",
            ["status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "offboard_action_latency_seconds",
            "Time from asking a system to verifying the change",
            ["system"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.registry.register(_StoreCollector(engine))

    def source(self, name: str) -> str:
        """A sender-named source's label: its own when known in advance, else ``other`` (labels stay a fixed set)."""
        return name if name in self.sources else OTHER_SOURCE

    def outcome(self, status: str) -> None:
        self.outcomes.labels(status).inc()

    def case_result(self, result: Any) -> None:
        for action in result.actions:
            start, end = action.get("requested_at"), action.get("verified_at") or action.get("responded_at")
            if start and end:
                self.latency.labels(action["system"]).observe(max(0.0, (end - start).total_seconds()))


def exposition(metrics: Metrics) -> bytes:
    """The Prometheus text of every metric (reads the store: call it off the event loop)."""
    return generate_latest(metrics.registry)


class _StoreCollector:
    """Gauges read at scrape time: cases and HR events by status, rate-limit waits per system."""

    def __init__(self, engine: Any):
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        by_case = GaugeMetricFamily("offboard_cases", "Cases by status", labels=["status"])
        for status, count in self.engine.store.case_counts_by_status().items():
            by_case.add_metric([status], count)
        by_event = GaugeMetricFamily(
            "offboard_hr_events", "Stored HR events by status (unresolved = unknown person)", labels=["status"]
        )
        for status, count in self.engine.store.hr_events.counts_by_status().items():
            by_event.add_metric([status], count)
        waits = CounterMetricFamily(
            "offboard_rate_limit_wait_seconds", "Seconds spent waiting on a system's rate limit", labels=["system"]
        )
        for system, seconds in self.engine.rate_limit_waits().items():
            waits.add_metric([system], seconds)
        yield by_case
        yield by_event
        yield waits
