"""The account inventory: every account in every system that can list, correlated to people.

``sync(engine)`` pages through ``Connector.list_accounts`` for each enabled connector
that can list, correlates each account to a person by the configured rules (explicit
mapping, primary email, aliases, employee id) and upserts it page by page, so memory
stays flat however many accounts there are. Accounts a system no longer lists are
removed when that system's sync completes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config._config import format_validation_error, load_yaml
from ..config._logging import get_logger
from ..errors import ConfigError, ConnectorError, OffboardError
from ..models import Account, Person, SyncStatus
from ..people import identity_key
from ..state._store import dumps

__all__ = [
    "sync",
    "SyncReport",
    "Rules",
    "PeopleIndex",
    "accounts_of",
    "active_accounts",
    "active_counts",
    "orphans",
    "uncorrelated",
    "mark_inactive",
]

log = get_logger("offboard.inventory")

Rule = Literal["mapping", "email", "aliases", "employee_id"]
RULES: tuple[Rule, ...] = ("mapping", "email", "aliases", "employee_id")


class Rules(BaseModel):
    """How accounts are correlated to people (config key ``inventory``)."""

    model_config = ConfigDict(extra="forbid")

    correlate: list[Rule] = Field(default_factory=lambda: list(RULES))
    employee_id_attributes: list[str] = Field(
        default_factory=lambda: ["employeeId", "externalId", "employeeNumber", "employee_id"]
    )
    mapping: str | None = Field(
        default=None, description="YAML/JSON {system: {account: person}} or CSV system,account,person"
    )

    @classmethod
    def from_config(cls, config: Any) -> Rules:
        raw = getattr(config, "inventory", None) or {}
        where = str(getattr(config, "source", None) or "config")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, where, "inventory")) from None


class PeopleIndex:
    """Person ids by primary email, alias and employee id; strings only, to stay small."""

    def __init__(self, people: Iterable[Person] = ()):
        self.ids: dict[str, str] = {}
        self.primary: dict[str, str] = {}
        self.aliases: dict[str, str] = {}
        self.employee_ids: dict[str, str] = {}
        self.inactive: set[str] = set()
        for person in people:
            self.add(person)

    def add(self, person: Person) -> None:
        self.ids.setdefault(identity_key(person.id), person.id)
        if person.email:
            self.primary.setdefault(identity_key(person.email), person.id)
        for alias in person.aliases:
            self.aliases.setdefault(identity_key(alias), person.id)
        if person.employee_id:
            self.employee_ids.setdefault(identity_key(person.employee_id), person.id)
        if not person.active:
            self.inactive.add(person.id)

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, ref: str) -> str | None:
        """The person id for an id, email, alias or employee id."""
        key = identity_key(ref)
        return self.ids.get(key) or self.primary.get(key) or self.aliases.get(key) or self.employee_ids.get(key)


class Correlator:
    """Decides which person an account belongs to, and by which rule."""

    def __init__(self, index: PeopleIndex, rules: Rules, mapping: dict[tuple[str, str], str]):
        self.index, self.rules, self.mapping = index, rules, mapping

    def __call__(self, account: Account, system_type: str) -> tuple[str | None, str | None]:
        # ``emails``: more addresses a connector read for the account (GitHub: its SAML/SCIM identity's emails)
        extra = account.attributes.get("emails")
        more = [str(e) for e in extra if e] if isinstance(extra, list) else []
        keys = list(dict.fromkeys(identity_key(k) for k in (account.id, account.name, account.email, *more) if k))
        for rule in self.rules.correlate:
            if rule == "mapping":
                for scope in (account.system, system_type, "*"):
                    for key in keys:
                        ref = self.mapping.get((scope, key))
                        if ref:
                            person = self.index.lookup(ref)
                            if person:
                                return person, "mapping"
            elif rule == "email":
                for key in keys:
                    if key in self.index.primary:
                        return self.index.primary[key], "email"
            elif rule == "aliases":
                for key in keys:
                    if key in self.index.aliases:
                        return self.index.aliases[key], "aliases"
            elif rule == "employee_id":
                for attr in self.rules.employee_id_attributes:
                    value = account.attributes.get(attr)
                    if value and identity_key(str(value)) in self.index.employee_ids:
                        return self.index.employee_ids[identity_key(str(value))], "employee_id"
        return None, None


def load_mapping(path: Path) -> dict[tuple[str, str], str]:
    """An explicit mapping file: ``(system, account) -> person reference``."""
    out: dict[tuple[str, str], str] = {}
    if path.suffix.lower() == ".csv":
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"cannot read the inventory mapping: {exc.strerror}", where=str(path)) from None
        for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
            if not row.get("account") or not row.get("person"):
                raise ConfigError(
                    f"row {number} needs `account` and `person` columns (and optionally `system`)", where=str(path)
                )
            out[((row.get("system") or "*").strip(), identity_key(row["account"]))] = row["person"].strip()
        return out
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError("the inventory mapping must map systems to {account: person}", where=str(path))
    for system, accounts in data.items():
        if not isinstance(accounts, dict):
            raise ConfigError(f"{system}: expected a mapping of account -> person", where=str(path))
        for account, person in accounts.items():
            if person:
                out[(str(system), identity_key(str(account)))] = str(person)
    return out


def _connector_mappings(config: Any, base: Path) -> dict[tuple[str, str], str]:
    """The connectors' own ``accounts:`` (person -> account) and GitHub's ``logins_file``."""
    out: dict[tuple[str, str], str] = {}
    for instance, cfg in config.connectors.items():
        pairs = dict(cfg.settings.get("accounts") or {})
        logins = cfg.settings.get("logins_file")
        if logins:
            path = Path(logins).expanduser()
            data = load_yaml(path if path.is_absolute() else base / path) or {}
            if isinstance(data, dict):
                pairs.update({str(k): str(v) for k, v in data.items() if v})
        for person, account in pairs.items():
            out[(instance, identity_key(str(account)))] = str(person)
    return out


@dataclass
class SystemSync:
    """One system's part of a sync."""

    system: str
    accounts: int = 0
    matched: int = 0
    removed: int = 0
    pages: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "accounts": self.accounts,
            "matched": self.matched,
            "removed": self.removed,
            "pages": self.pages,
            "status": (SyncStatus.OK if self.ok else SyncStatus.FAILED).value,
            "error": self.error,
        }


@dataclass
class SyncReport:
    """What a sync saw: per system, plus the systems that cannot list."""

    systems: list[SystemSync] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    people: int = 0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.systems)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "people": self.people,
            "systems": [s.to_dict() for s in self.systems],
            "cannot_list": self.unlisted,
        }


def people_index(engine: Any) -> PeopleIndex:
    """Every person from the configured people sources."""
    index = PeopleIndex()
    for source in engine.people():
        for person in source.people():
            index.add(person)
    return index


def sync(
    engine: Any, systems: Iterable[str] | None = None, rules: Rules | None = None, index: PeopleIndex | None = None
) -> SyncReport:
    """List every account on every enabled connector that can list, correlate and store them."""
    rules = rules or Rules.from_config(engine.config)
    base = engine.config.source.parent if engine.config.source else Path.cwd()
    mapping = _connector_mappings(engine.config, base)
    if rules.mapping:
        path = Path(rules.mapping).expanduser()
        mapping.update(load_mapping(path if path.is_absolute() else base / path))
    index = index if index is not None else people_index(engine)
    correlate = Correlator(index, rules, mapping)
    names = list(systems) if systems is not None else engine.enabled_connectors()
    report = SyncReport(people=len(index))
    listable = []
    for name in names:
        if name not in engine.config.connectors:
            raise ConfigError(f"no connector named {name!r} in the configuration")
        if type(engine.connector(name)).can_list():
            listable.append(name)
        else:
            report.unlisted.append(name)
    if not listable:
        return report
    with ThreadPoolExecutor(max_workers=min(8, len(listable)), thread_name_prefix="offboard-inventory") as pool:
        report.systems = list(pool.map(lambda n: _sync_system(engine, n, correlate), listable))
    return report


def _sync_system(engine: Any, instance: str, correlate: Correlator) -> SystemSync:
    store = engine.store
    connector = engine.connector(instance)
    system_type = engine.config.connectors[instance].type
    started = engine.clock()
    result = SystemSync(instance)
    sync_id = store.inventory.start_sync(instance, started)
    cursor: str | None = None
    seen: set[str] = set()
    try:
        while True:
            page, _ = engine.call(instance, connector.list_accounts, cursor)
            rows = []
            for account in page.accounts:
                person_id, rule = correlate(account, system_type)
                result.matched += person_id is not None
                rows.append(_row(account, instance, person_id, rule, started))
            store.inventory.upsert(rows)
            result.accounts += len(rows)
            result.pages += 1
            if page.cursor is None:
                break
            if page.cursor in seen:
                raise OffboardError(
                    f"{instance} returned the list cursor {page.cursor[:40]!r} twice; stopping to avoid a loop"
                )
            seen.add(page.cursor)
            cursor = page.cursor
    except (ConnectorError, OffboardError) as exc:
        from ..config._logging import redact

        result.error = redact(f"{type(exc).__name__}: {exc}")
    if result.ok:
        result.removed = store.inventory.remove_unseen(instance, started)
    store.inventory.finish_sync(
        sync_id,
        status=SyncStatus.OK if result.ok else SyncStatus.FAILED,
        finished_at=engine.clock(),
        accounts=result.accounts,
        matched=result.matched,
        removed=result.removed,
        error=result.error,
    )
    engine.record("inventory_sync", None, result.to_dict())
    log.info("inventory synced", **result.to_dict())
    return result


def _row(account: Account, instance: str, person_id: str | None, rule: str | None, seen: datetime) -> dict[str, Any]:
    return {
        "system": instance,
        "account_id": account.id,
        "name": account.name,
        "email": account.email,
        "active": bool(account.active),
        "admin": bool(account.admin),
        "person_id": person_id,
        "matched_by": rule,
        "attributes": dumps(dict(account.attributes)),
        "first_seen": seen,
        "last_seen": seen,
    }


# -- queries ----------------------------------------------------------------------


def account(row: dict[str, Any]) -> Account:
    """The Account an inventory row describes."""
    return Account(
        row["system"],
        row["account_id"],
        row["name"],
        row["email"],
        bool(row["active"]),
        bool(row["admin"]),
        json.loads(row["attributes"] or "{}"),
    )


def accounts_of(store: Any, person_id: str) -> list[dict[str, Any]]:
    """Every inventoried account correlated to ``person_id``."""
    return list(store.inventory.accounts(person_ids=[person_id]))


def active_accounts(store: Any, person_ids: Iterable[str]) -> dict[str, list[Account]]:
    """Active accounts by person, for the given people."""
    wanted = list(dict.fromkeys(person_ids))
    out: dict[str, list[Account]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in store.inventory.accounts(person_ids=chunk, active=True, by_name=False):
            out.setdefault(row["person_id"], []).append(account(row))
    return out


def active_counts(store: Any) -> dict[str, int]:
    """How many active accounts each system holds in the inventory."""
    return store.inventory.active_counts()


def orphans(store: Any, index: PeopleIndex, protection: Any = None) -> Iterator[dict[str, Any]]:
    """Active accounts that belong to no active person (protected ones left out when ``protection`` is given)."""
    for row in store.inventory.accounts(active=True):
        owner = row["person_id"]
        if owner is not None and owner not in index.inactive:
            continue
        if protection is not None and protection.reason(account(row)):
            continue
        row["why"] = "no owner" if owner is None else f"owner {owner} is inactive"
        yield row


def uncorrelated(store: Any, protection: Any = None) -> dict[str, str]:
    """Systems holding active accounts that belong to no one and carry no email: the rules had nothing to match
    them by, so whether a given person holds one of them is unknown. ``system -> why`` (protected accounts left
    out when ``protection`` is given)."""
    counts: dict[str, int] = {}
    reasons: dict[str, str] = {}
    for row in store.inventory.accounts(active=True):
        if row["person_id"] is not None or row["email"]:
            continue
        found = account(row)
        if found.attributes.get("emails") or (protection is not None and protection.reason(found)):
            continue
        counts[row["system"]] = counts.get(row["system"], 0) + 1
        if found.attributes.get("correlation"):
            reasons.setdefault(row["system"], str(found.attributes["correlation"]))
    return {
        system: f"{n} active account(s) there belong to no one and carry no email to correlate by"
        + (f" ({reasons[system]})" if system in reasons else "")
        + "; map them with inventory.mapping or the connector's accounts:"
        for system, n in sorted(counts.items())
    }


def mark_inactive(store: Any, keys: Iterable[tuple[str, str]]) -> None:
    """Record that accounts were disabled, without waiting for the next sync."""
    keys = list(keys)
    if keys:
        store.inventory.mark_inactive(keys)
