"""Policies: which actions apply to which accounts, what is protected, what runs later.

A policy is a YAML file::

    name: default
    description: Employees leaving the company.
    person_types: [employee]
    actions:                       # for every connector, in this order
      - revoke_sessions
      - disable_account
      - remove_memberships
    connectors:                    # per connector instance or type; replaces `actions`
      google:
        actions: [revoke_sessions, revoke_tokens, disable_account, remove_memberships]
        params: {transfer_to: manager}
    protected:                     # never touched: names, glob patterns, regexes
      names: [breakglass@corp.example]
      patterns: ["svc-*", "admin-*"]
      regex: []
      admins: true                 # accounts a connector reports as administrators
    later:
      - action: delete_account
        after: 30d
        connectors: [entra, scim]
    tasks:                         # the human checklist (docs/checklists.md)
      - id: handover
        title: Collect the handover document
        owner: manager             # manager, it, hr, security, or a named team
        due: -2d                   # relative to the last day, in the person's time zone
        blocking: false            # true: the case is not complete while it is open
        person_types: [employee, contractor]
    equipment:                     # one return task per loaned item
      owner: it
      due: 0d
      blocking: true
    handover:                      # mailbox, files and calendars go to; the auto-reply (docs/policies.md)
      to: manager                  # or an email address
      auto_reply: "{name} has left. Please write to {manager}."
      recent_days: 30              # list forwarding, filters, grants... set up this many days before the end
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import PolicyError
from ..models import Account, ActionKind
from ._config import format_validation_error, load_yaml
from ._durations import parse_duration, parse_offset
from ._paths import bundled_policies_dir

__all__ = [
    "Policy",
    "TaskRule",
    "HandoverRule",
    "EquipmentRule",
    "load_policy",
    "load_policies",
    "parse_duration",
    "parse_offset",
    "Protection",
]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConnectorRule(_Strict):
    actions: list[ActionKind] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    skip: bool = False


class ProtectedRule(_Strict):
    names: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    admins: bool = True

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                re.compile(item)
            except re.error as exc:
                raise ValueError(f"{item!r} is not a valid regular expression: {exc}") from None
        return value


class LaterStep(_Strict):
    action: ActionKind
    after: str
    connectors: list[str] | None = None

    @field_validator("after")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def delay(self) -> timedelta:
        return parse_duration(self.after)


class _Assigned(_Strict):
    """Who owns a checklist step, when it is due relative to the last day, and whether it blocks completion."""

    owner: str
    due: str = "0d"
    blocking: bool = False

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(
                f"{value!r} is not an owner: use manager, it, hr, security or a team name (lowercase, digits, - _ .)"
            )
        return value

    @field_validator("due")
    @classmethod
    def _due(cls, value: str) -> str:
        parse_offset(value)
        return value


class TaskRule(_Assigned):
    """A checklist step no API can do."""

    id: str
    title: str = Field(min_length=1, max_length=300)
    person_types: list[str] = Field(default_factory=lambda: ["employee", "contractor"])
    when: Literal["always", "equipment"] = Field(
        default="always", description="'equipment': only for people with loaned equipment"
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"{value!r} is not a task id: lowercase letters, digits, - _ . (at most 64)")
        return value


class EquipmentRule(_Assigned):
    """The return task made for each loaned item; ``title`` may use {asset_tag}, {kind}, {loaned_on}, {description}."""

    owner: str = "it"
    blocking: bool = True
    title: str = "Return {kind} {asset_tag} and check it for wear"

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        try:
            value.format(asset_tag="", kind="", loaned_on="", description="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"title {value!r} may only use {{asset_tag}}, {{kind}}, {{loaned_on}}, {{description}} ({exc})"
            ) from None
        return value


_REPLY_FIELDS = {"name": "", "email": "", "manager": "", "manager_name": "", "last_day": ""}


class HandoverRule(_Strict):
    """Who takes over a leaver's mailbox, files and calendars, the auto-reply they get, and how far back
    ``recent set-ups`` (forwarding, filters, delegations, grants, app passwords) are listed."""

    to: str = Field(default="manager", description="'manager' (the person's manager) or an email address")
    auto_reply: str = Field(
        default="{name} has left the company. {manager} is looking after their work: please write to {manager}.",
        min_length=1,
        max_length=10_000,
        description="the auto-reply text; may use {name}, {email}, {manager}, {manager_name}, {last_day}",
    )
    auto_reply_subject: str = Field(default="{name} has left", min_length=1, max_length=500)
    recent_days: int = Field(
        default=30, ge=0, le=3650, description="list set-ups created this many days before the end"
    )

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        if value != "manager" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError(f"{value!r} is neither 'manager' nor an email address")
        return value

    @field_validator("auto_reply", "auto_reply_subject")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(**_REPLY_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value[:60]!r} may only use {{name}}, {{email}}, {{manager}}, {{manager_name}}, {{last_day}} "
                f"(problem: {type(exc).__name__} {exc}; write {{{{ and }}}} for literal braces)"
            ) from None
        return value


class Policy(_Strict):
    """A validated policy."""

    name: str
    description: str = ""
    person_types: list[str] = Field(default_factory=lambda: ["employee", "contractor"])
    actions: list[ActionKind] = Field(min_length=1)
    connectors: dict[str, ConnectorRule] = Field(default_factory=dict)
    protected: ProtectedRule = Field(default_factory=ProtectedRule)
    later: list[LaterStep] = Field(default_factory=list)
    tasks: list[TaskRule] = Field(default_factory=list)
    equipment: EquipmentRule | None = Field(default_factory=EquipmentRule, description="null: no return tasks")
    handover: HandoverRule = Field(default_factory=HandoverRule)

    @field_validator("tasks")
    @classmethod
    def _unique(cls, value: list[TaskRule]) -> list[TaskRule]:
        seen: set[str] = set()
        for task in value:
            if task.id in seen or task.id.startswith("return-"):
                raise ValueError(
                    f"task id {task.id!r} is used twice or starts with 'return-' (kept for equipment returns)"
                )
            seen.add(task.id)
        return value

    def rule_for(self, instance: str, connector_type: str) -> ConnectorRule | None:
        return self.connectors.get(instance) or self.connectors.get(connector_type)

    def actions_for(self, instance: str, connector_type: str) -> tuple[list[ActionKind], dict[str, Any]]:
        """The action kinds and parameters this policy asks of one connector."""
        rule = self.rule_for(instance, connector_type)
        if rule is None:
            return list(self.actions), {}
        if rule.skip:
            return [], dict(rule.params)
        return list(rule.actions if rule.actions is not None else self.actions), dict(rule.params)


@dataclass(frozen=True)
class Protection:
    """Protected accounts: a policy's list plus the configuration's global list."""

    names: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()
    regex: tuple[re.Pattern[str], ...] = field(default=())
    admins: bool = True

    @classmethod
    def combine(cls, policy: Policy | None, extra: Iterable[str] = ()) -> Protection:
        rule = policy.protected if policy else ProtectedRule()
        names = {n.lower() for n in rule.names}
        patterns = [p.lower() for p in rule.patterns]
        for item in extra:
            if any(c in item for c in "*?["):
                patterns.append(item.lower())
            else:
                names.add(item.lower())
        regex = tuple(re.compile(r, re.I) for r in rule.regex)
        return cls(frozenset(names), tuple(patterns), regex, rule.admins)

    def reason(self, account: Account) -> str | None:
        """Why ``account`` is protected, or None."""
        if self.admins and account.admin:
            return "administrator account"
        keys = {k.lower() for k in (account.name, account.email, account.id) if k}
        if keys & self.names:
            return "listed as protected"
        for key in keys:
            for pattern in self.patterns:
                if fnmatch.fnmatchcase(key, pattern):
                    return f"matches protected pattern {pattern!r}"
            for rx in self.regex:
                if rx.search(key):
                    return f"matches protected regex {rx.pattern!r}"
        return None


def load_policy(path: Path) -> Policy:
    """Load and validate one policy file; errors name the file, key and problem."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise PolicyError("a policy must be a mapping with at least `name` and `actions`", where=str(path))
    data.setdefault("name", path.stem)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, str(path), model=Policy)) from None


def policy_files(extra: list[str] | None = None, base: Path | None = None) -> list[Path]:
    """Bundled policy files, then the configured ones (which override by name)."""
    files = sorted(bundled_policies_dir().glob("*.y*ml"))
    for item in extra or []:
        path = Path(item).expanduser()
        if base and not path.is_absolute():
            path = base / path
        if path.is_dir():
            files += sorted(path.glob("*.y*ml"))
        else:
            files.append(path)
    return files


def load_policies(extra: list[str] | None = None, base: Path | None = None) -> dict[str, Policy]:
    """Every policy by name."""
    return {p.name: p for p in map(load_policy, policy_files(extra, base))}
