"""Building a configured connector: settings checked, buckets and cap made, set-up retried.

A connector's set-up talks to its system (MSAL's authority discovery, a token, an SDK's
discovery document). That is a call like any other: a throttled or failing set-up is retried
under the retry policy (``_retry``), so ``resume``, a worker or the server never gives up on
one 429. A set-up that still fails when its time budget is spent is remembered for one budget
(later chains fail at once with the same reason, instead of each spending the budget again).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .. import plugins
from ..config._config import format_validation_error
from ..connector import Connector
from ..errors import ConfigError, ConnectorError
from ..models import Action
from ._retry import call_with_retries

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["rebuild_connector", "build_connector", "connector_class", "concurrency_cap"]


def connector_class(engine: Engine, instance: str) -> type[Connector]:
    """The class configured for ``instance``; a ConfigError naming the instance when there is none."""
    cfg = engine.config.connectors.get(instance)
    if cfg is None:
        raise ConfigError(f"no connector named {instance!r} in the configuration")
    classes = plugins.connector_classes()
    cls = classes.get(cfg.type)
    if cls is None:
        known = ", ".join(sorted(classes)) or "none"
        raise ConfigError(
            f"unknown connector type {cfg.type!r} (installed: {known})",
            where=f"{engine.config.source or 'config'}: connectors.{instance}",
        )
    return cls


def concurrency_cap(engine: Engine, instance: str, cls: type[Connector] | None = None) -> int:
    """Calls ``instance`` may have in flight at once: its configured ``concurrency``, else its class's default
    (``cls``: its class where the caller holds it, sparing the plugin registry a lookup)."""
    configured = engine.config.connectors[instance].concurrency
    return configured or (cls or connector_class(engine, instance)).default_concurrency


def build_connector(engine: Engine, instance: str) -> Connector:
    """The connector instance, built once per engine; concurrent callers for one instance wait for the first."""
    with engine._lock:
        if instance in engine._connectors:
            return engine._connectors[instance]
        building = engine._building.setdefault(instance, threading.Lock())
    with building:
        with engine._lock:
            if instance in engine._connectors:
                return engine._connectors[instance]
        failed = engine._setup_failed.get(instance)
        if failed is not None and engine.monotonic() - failed[0] < engine.config.limits.action_budget:
            raise failed[1]
        try:
            return _build(engine, instance)
        except ConnectorError as exc:
            engine._setup_failed[instance] = (engine.monotonic(), exc)
            raise


def rebuild_connector(engine: Engine, instance: str) -> None:
    """Build ``instance`` again (its credentials read again) and swap it in; calls running on the old one finish
    on it, and it is closed with the engine. A set-up that fails is remembered as ``build_connector`` does."""
    with engine._lock:
        building = engine._building.setdefault(instance, threading.Lock())
        old = engine._connectors.get(instance)
    with building:
        try:
            _build(engine, instance)
        except ConnectorError as exc:
            engine._setup_failed[instance] = (engine.monotonic(), exc)
            raise
    if old is not None:
        with engine._lock:
            engine._retired.append(old)


def _build(engine: Engine, instance: str) -> Connector:
    cls = connector_class(engine, instance)
    cfg = engine.config.connectors[instance]
    try:
        settings = cls.Settings.model_validate(cfg.settings)
    except ValidationError as exc:
        where = f"connectors.{instance}.settings"
        raise ConfigError(format_validation_error(exc, str(engine.config.source or "config"), where)) from None
    with engine._lock:
        if instance not in engine._buckets:
            rate = cfg.rate if cfg.rate is not None else cls.rate_for(settings)
            engine._buckets[instance] = engine.bucket_factory(
                instance, rate, cfg.burst, clock=lambda: engine.monotonic()
            )
            for lane, (lane_rate, lane_burst) in cls.rate_limits.items():
                lane_rate = cfg.rates.get(lane, cfg.rates.get("*", lane_rate))
                engine._buckets[f"{instance}:{lane}"] = engine.bucket_factory(
                    f"{instance}:{lane}", lane_rate, lane_burst, clock=lambda: engine.monotonic()
                )
        bucket = engine._buckets[instance]

    def attempt() -> Connector:
        bucket.acquire(engine.sleep)
        return cls(instance, settings)

    connector: Connector
    connector, _ = call_with_retries(
        attempt,
        system=instance,
        limits=engine.config.limits,
        pause=lambda lane, seconds: engine._lane_bucket(instance, lane).pause(seconds),
        sleep=engine.sleep,
        clock=lambda: engine.monotonic(),
    )
    connector.request = functools.partial(engine._request, instance)  # type: ignore[method-assign]
    if cls.rate_limits:  # per request: the system's own bucket, then the request's lane
        connector.throttle = functools.partial(engine._throttle, instance)  # type: ignore[method-assign]
    connector.keep_before = functools.partial(_keep_before, engine, instance)  # type: ignore[method-assign]
    with engine._lock:
        # built again after an authentication hold: calls still running on the old one give back the same cap
        engine._slots.setdefault(instance, threading.BoundedSemaphore(concurrency_cap(engine, instance)))
        engine._connectors[instance] = connector
        engine._setup_failed.pop(instance, None)
    return connector


def _keep_before(engine: Engine, instance: str, action: Action, before: Mapping[str, Any]) -> None:
    """What a case's write read just before writing: kept as the account's original (the first one wins,
    so an attempt after a lost reply, which reads offboard's own change, cannot replace it)."""
    case_id = action.params.get("case")
    if case_id:  # undo's own writes carry no case: they restore, they keep nothing
        engine.store.originals.keep(instance, action.account.id, action.kind.value, str(case_id), dict(before))
