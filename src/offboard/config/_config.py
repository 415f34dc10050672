"""The configuration file: one YAML document validated by pydantic.

Errors name the file, the key and the problem. Secrets are references (``env:NAME``,
``file:PATH``) resolved when the connector's settings are validated.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError
from ._durations import parse_duration

__all__ = [
    "CasesConfig",
    "Config",
    "ConnectorConfig",
    "Limits",
    "TasksConfig",
    "load_config",
    "format_validation_error",
]


def time_of_day(value: str) -> str:
    """Validate ``HH:MM`` or ``HH:MM:SS``; the value itself on success."""
    from datetime import time

    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day (HH:MM or HH:MM:SS)") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConnectorConfig(_Strict):
    """One connector instance: its type (connector name) and settings."""

    type: str = Field(description="connector name (`offboard connectors` lists them)")
    settings: dict[str, Any] = Field(default_factory=dict, description="the connector's settings (its docs page)")
    enabled: bool = Field(default=True, description="include in discovery and plans")
    concurrency: int | None = Field(
        default=None, ge=1, le=256, description="at most this many calls at once to this system (none: the connector's)"
    )
    rate: float | None = Field(
        default=None, gt=0, description="token bucket: calls per second (none: the vendor's published limit)"
    )
    burst: int | None = Field(default=None, ge=1, description="token bucket: how many calls may be saved up")
    rates: dict[str, float] = Field(
        default_factory=dict,
        description="per-lane rates (requests per second) overriding the connector's; '*' for every lane",
    )


class Limits(_Strict):
    """Guards against mass mistakes and retry budgets."""

    max_cases: int = Field(default=25, ge=1, description="bulk guard: a sweep over this many cases halts for approval")
    max_percent: float = Field(
        default=10.0, gt=0, le=100, description="bulk guard: a sweep over this share of people halts for approval"
    )
    max_attempts: int = Field(
        default=10,
        ge=1,
        le=50,
        description=(
            "failures (5xx, timeouts) one call, or one request in it, may have running before it gives up (at 20% "
            "failures, ten running happen once in ten million requests; a dead vendor gives up after 1-2 min of "
            "backoff, within `action_budget`)"
        ),
    )
    min_retry_wait: float = Field(
        default=0.5,
        gt=0,
        description=(
            "first backoff after a call's own failure (s): drawn between a fifth of it and all of it (full jitter), "
            "later ones doubling from it"
        ),
    )
    max_retry_wait: float = Field(default=30.0, gt=0, description="longest backoff after a call's own failure (s)")
    action_budget: float = Field(
        default=300.0, gt=0, description="seconds one call may take with its retries before it gives up"
    )
    max_rate_limited_wait: float = Field(
        default=900.0, gt=0, description="total seconds one call may wait on rate limits"
    )
    workers: int = Field(default=32, ge=1, le=512, description="engine threads")
    lease_seconds: float = Field(
        default=30.0, ge=3, description="a running case's lease lasts this long without a heartbeat"
    )


class PeopleConfig(_Strict):
    """A people source: its type and settings (see ``register_people_sources``)."""

    type: str = Field(description="people source type, e.g. `hr_export`")
    settings: dict[str, Any] = Field(default_factory=dict, description="the source's settings")


class TasksConfig(_Strict):
    """Checklist settings: who each owner role is, where loaned equipment is listed, when to remind."""

    owners: dict[str, list[str]] = Field(
        default_factory=dict, description="owner role -> email addresses reminders go to"
    )
    equipment: str | None = Field(
        default=None, description="CSV or JSON file of loaned equipment: person, asset_tag, kind, loaned_on"
    )
    due_time: str = Field(default="17:00", description="local time of day a task is due on its due date")
    remind_before: str = Field(default="1d", description="send the 'due' reminder this long before a task is due")
    min_notice: str = Field(
        default="4h",
        description="a task is never due sooner than this after its case opens: one that would be (or is "
        "already past) is due at the first `due_time` after it",
    )
    remind_every: str = Field(default="15m", description="how often `offboard serve` looks for reminders to send")

    @field_validator("due_time")
    @classmethod
    def _time(cls, value: str) -> str:
        return time_of_day(value)

    @field_validator("remind_before", "remind_every", "min_notice")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class CasesConfig(_Strict):
    """Owed work and repeat revokes: when failed actions are retried, escalated, and when a revoke needs ``--again``."""

    retry_after: str = Field(default="5m", description="first wait before an owed action is retried")
    retry_max: str = Field(default="6h", description="longest wait between retries (the backoff doubles up to this)")
    escalate_after: str = Field(default="3d", description="notify (event 'owed') when an action is owed this long")
    again_within: str = Field(default="30d", description="a revoke this soon after a complete case needs --again")
    check_on_close: bool = Field(default=True, description="run the residual-access check before closing a case")

    @field_validator("retry_after", "retry_max", "escalate_after", "again_within")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class Config(_Strict):
    """The whole configuration file."""

    connectors: dict[str, ConnectorConfig] = Field(
        default_factory=dict, description="connector instances by name (the keys below)"
    )
    people: list[PeopleConfig] = Field(
        default_factory=list, description="people sources: `[{type: hr_export, settings: {path: hr.csv}}]`"
    )
    policies: list[str] = Field(default_factory=list, description="extra policy files or folders")
    default_policy: str = Field(
        default="default", description="policy for people whose type has no entry in `policy_by_type`"
    )
    policy_by_type: dict[str, str] = Field(
        default_factory=lambda: {"contractor": "contractor"}, description="person type -> policy name"
    )
    protected: list[str] = Field(default_factory=list, description="account names or glob patterns never touched")
    limits: Limits = Field(default_factory=Limits, description="bulk guards and retry budgets (the keys below)")
    store: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in the data directory")
    plugins: list[str] = Field(default_factory=list, description="extra plugin modules or .py files")
    notifiers: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="notifier instances by name: their type and settings (checklists.md)"
    )
    server: dict[str, Any] = Field(default_factory=dict, description="`offboard serve` (the table below; webhooks.md)")
    sweep: dict[str, Any] = Field(default_factory=dict, description="end-date sweeps: schedule and guards (sweeps.md)")
    inventory: dict[str, Any] = Field(default_factory=dict, description="correlation rules and mapping file")
    audit: dict[str, Any] = Field(default_factory=dict, description="audit log settings such as `origin` (auditors.md)")
    tasks: TasksConfig = Field(default_factory=TasksConfig, description="checklists (the keys below; checklists.md)")
    cases: CasesConfig = Field(
        default_factory=CasesConfig, description="owed work, retries and escalation (the keys below)"
    )
    execution: str = Field(
        default="embedded",
        pattern="^(embedded|distributed)$",
        description="`embedded` runs jobs in this process; `distributed`: `offboard worker`s on PostgreSQL",
    )

    source: Path | None = Field(default=None, exclude=True)

    @field_validator("sweep")
    @classmethod
    def _schedule(cls, value: dict[str, Any]) -> dict[str, Any]:
        schedule = value.get("schedule")
        if schedule is not None:
            from croniter import croniter

            if not isinstance(schedule, str) or not croniter.is_valid(schedule):
                raise ValueError(f"schedule {schedule!r} is not a cron expression such as '0 * * * *'")
        if "allow_destructive" in value and not isinstance(value["allow_destructive"], bool):
            raise ValueError(f"allow_destructive must be true or false, not {value['allow_destructive']!r}")
        if value.get("check_since") is not None:
            try:
                parse_duration(str(value["check_since"]))
            except ValueError as exc:
                raise ValueError(f"check_since: {exc}") from None
        return value

    @field_validator("connectors")
    @classmethod
    def _names(cls, value: dict[str, ConnectorConfig]) -> dict[str, ConnectorConfig]:
        for name in value:
            if not name or ":" in name or "/" in name:
                raise ValueError(f"connector instance name {name!r} may not be empty or contain ':' or '/'")
        return value


def keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys ``model`` accepts in the mapping at ``loc`` (empty when that mapping is free-form).

    Follows fields, the values of ``dict[str, Model]`` and the items of ``list[Model]``.
    """
    import typing

    current: Any = model
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
            continue
        current = _without_none(current)
        origin, args = typing.get_origin(current), typing.get_args(current)
        if origin is dict and len(args) == 2:
            current = args[1]
        elif origin is list and args:
            current = args[0]
        else:
            return []
    current = _without_none(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [k for k in current.model_fields if k != "source"]
    return []


def _without_none(annotation: Any) -> Any:
    """``M | None`` -> ``M``; anything else unchanged."""
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def format_validation_error(
    exc: ValidationError, where: str, prefix: str = "", model: type[BaseModel] | None = None
) -> str:
    """One line per problem: ``file: key.path: message``; an unknown key gets the nearest known ones."""
    from ._hints import did_you_mean

    model = model or _validated_model(exc)
    lines = []
    for err in exc.errors():
        parts = ([prefix] if prefix else []) + [str(p) for p in err["loc"]]
        loc = ".".join(parts) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            known = keys_at(model, tuple(err["loc"][:-1])) if model is not None else []
            hint = did_you_mean(str(err["loc"][-1]), known)
            msg = "unknown key" + (f".{hint}" if hint else "")
        lines.append(f"{where}: {loc}: {msg}")
    return "\n".join(lines)


def _validated_model(exc: ValidationError) -> type[BaseModel] | None:
    """The model class a ValidationError was raised for, when it is one of ours."""
    return _MODELS.get(exc.title)


def load_yaml(path: Path) -> Any:
    """Read a YAML file, turning syntax errors into ConfigError with line numbers."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML{at}: {problem}", where=str(path)) from None


_MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m for m in (Config, ConnectorConfig, Limits, PeopleConfig, TasksConfig)
}


def load_config(path: str | Path | None = None) -> Config:
    """Load ``path``, else ``OFFBOARD_CONFIG``, else an empty configuration."""
    raw_path = path or os.environ.get("OFFBOARD_CONFIG")
    if not raw_path:
        return Config()
    path = Path(raw_path).expanduser()
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of keys to values", where=str(path))
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from None
    config.source = path
    load_plugins(config)
    return config


def load_plugins(config: Config) -> None:
    """Register the extra plugin modules named in the config."""
    if not config.plugins:
        return
    from .. import plugins

    pm = plugins.get_plugin_manager()
    base = config.source.parent if config.source else Path.cwd()
    for ref in config.plugins:
        module = _import_plugin(ref, base, config)
        if not pm.is_registered(module):
            pm.register(module, f"config:{ref}")
    try:
        pm.check_pending()
    except Exception as exc:
        raise ConfigError(f"plugin {exc}", where=str(config.source)) from None


def _import_plugin(ref: str, base: Path, config: Config) -> Any:
    where = f"{config.source}: plugins" if config.source else "plugins"
    if ref.endswith(".py"):
        file = (base / ref).resolve()
        for module in list(sys.modules.values()):  # already imported under another name
            path = getattr(module, "__file__", None)
            if path and Path(path).resolve() == file:
                return module
        name = f"offboard_plugin_{file.stem}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or not file.exists():
            raise ConfigError(f"plugin file {file} does not exist", where=where)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module
    try:
        return importlib.import_module(ref)
    except ImportError as exc:
        raise ConfigError(f"cannot import plugin module {ref!r}: {exc}", where=where) from None
