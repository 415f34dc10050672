"""The bundled people sources: an HR export file, and a directory attribute (LDAP, Active Directory).

People sources are :class:`offboard.PeopleSource` classes registered through the
``register_people_sources`` hook; the Entra ID and Google Workspace sources live in their
connectors' modules.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import plugins
from ..config._config import format_validation_error
from ..config._secrets import Secret
from ..errors import ConfigError, OffboardError
from ..hookspecs import hookimpl
from ..models import Equipment, Person
from ..people import PeopleSource, end_date, find_person, person_type

__all__ = ["PeopleSource", "HRExport", "DirectoryAttribute", "configured_sources", "find_person", "directory_date"]


class HRExport(PeopleSource):
    """An HR export file (CSV or JSON list of objects) with mapped columns."""

    name = "hr_export"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str
        format: str | None = Field(default=None, pattern="^(csv|json)$")
        columns: dict[str, str] = Field(
            default_factory=dict,
            description="our field -> the file's column: id, email, aliases, employee_id, name, "
            "type, manager, end_date, timezone, active, equipment, legal_hold",
        )

    settings: Settings

    def _column(self, field: str) -> str:
        return self.settings.columns.get(field, field)

    def _rows(self) -> Iterator[dict[str, Any]]:
        path = Path(self.settings.path).expanduser()
        if not path.is_absolute():
            path = self.base / path
        fmt = self.settings.format or ("json" if path.suffix.lower() == ".json" else "csv")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise ConfigError(f"cannot read HR export: {exc.strerror}", where=str(path)) from None
        if fmt == "json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"not valid JSON at line {exc.lineno}: {exc.msg}", where=str(path)) from None
            if not isinstance(data, list):
                raise ConfigError("the JSON HR export must be a list of objects", where=str(path))
            yield from data
        else:
            yield from csv.DictReader(text.splitlines())

    def people(self) -> Iterator[Person]:
        for number, row in enumerate(self._rows(), start=1):
            yield self._person(row, number)

    def _person(self, row: dict[str, Any], number: int) -> Person:
        def get(field: str) -> Any:
            value = row.get(self._column(field))
            return value.strip() if isinstance(value, str) else value

        email = get("email")
        ident = get("id") or email or get("employee_id")
        if not ident:
            raise ConfigError(f"row {number} has no id, email or employee id", where=self.settings.path)
        tz = get("timezone") or "UTC"
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"row {number}: unknown time zone {tz!r}", where=self.settings.path) from None
        aliases = get("aliases") or ()
        if isinstance(aliases, str):
            aliases = tuple(a.strip() for a in aliases.replace(";", ",").split(",") if a.strip())
        active = get("active")
        return Person(
            id=str(ident),
            email=email or None,
            aliases=tuple(aliases),
            employee_id=str(get("employee_id")) if get("employee_id") else None,
            name=get("name") or None,
            type=(get("type") or "employee").lower(),
            manager=get("manager") or None,
            end_date=_end_date(get("end_date"), zone, number, self.settings.path),
            timezone=tz,
            active=str(active).lower() not in ("false", "0", "no", "inactive") if active not in (None, "") else True,
            equipment=_equipment(get("equipment"), number, self.settings.path),
            legal_hold=str(get("legal_hold")).strip() or None if get("legal_hold") else None,
        )


def _equipment(value: Any, number: int, where: str) -> tuple[Equipment, ...]:
    """Loaned items: a JSON list of {asset_tag, kind, loaned_on}, or in CSV ``TAG:kind:YYYY-MM-DD; TAG:kind``."""
    if not value:
        return ()
    if isinstance(value, str):
        value = [
            dict(zip(("asset_tag", "kind", "loaned_on"), (p.strip() for p in item.split(":"))))
            for item in value.replace(",", ";").split(";")
            if item.strip()
        ]
    if not isinstance(value, list) or not all(isinstance(v, dict) and v.get("asset_tag") for v in value):
        raise ConfigError(
            f"row {number}: equipment must list items with an asset_tag (TAG:kind:YYYY-MM-DD; ...)", where=where
        )
    items = []
    for item in value:
        loaned = item.get("loaned_on") or None
        if loaned is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(loaned)):
            raise ConfigError(
                f"row {number}: equipment {item['asset_tag']}: loaned_on {loaned!r} is not a date (YYYY-MM-DD)",
                where=where,
            )
        items.append(
            Equipment(
                str(item["asset_tag"]), str(item.get("kind") or "device"), loaned, str(item.get("description") or "")
            )
        )
    return tuple(items)


def _end_date(value: Any, zone: ZoneInfo, number: int, where: str) -> datetime | None:
    """An end date means the end of that day in the person's zone unless a time is given."""
    return end_date(value, zone, where=where, label=f"row {number}: end date")


def _zone(name: str | None, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r}", where=where) from None


# -- a directory attribute (LDAP / Active Directory) ------------------------------------

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_NEVER = {0, 9223372036854775807}


def directory_date(value: str, fmt: str, zone: ZoneInfo) -> datetime | None:
    """An end date from a directory attribute: AD FILETIME, LDAP GeneralizedTime, shadow days or ISO."""
    value = value.strip()
    if not value:
        return None
    if fmt == "ad_filetime":  # accountExpires: 100 ns ticks since 1601; 0 and 2**63-1 mean never
        ticks = int(value)
        return None if ticks in _NEVER else _FILETIME_EPOCH + timedelta(microseconds=ticks // 10)
    if fmt == "shadow_days":  # shadowExpire: days since 1970-01-01, the account is gone from that day on
        day = date(1970, 1, 1) + timedelta(days=int(value))
        return datetime.combine(day, time(0), tzinfo=zone)
    if fmt == "generalized_time":  # 20250131170000Z, 20250131170000.0Z or with +hhmm
        match = re.fullmatch(r"(\d{14})(?:[.,]\d+)?(Z|z|[+-]\d{4})?", value)
        if not match:
            raise ValueError(value)
        parsed = datetime.strptime(match.group(1), "%Y%m%d%H%M%S")
        offset = match.group(2)
        if not offset:
            return parsed.replace(tzinfo=zone)
        return (
            parsed.replace(tzinfo=UTC)
            if offset in "Zz"
            else datetime.strptime(match.group(1) + offset, "%Y%m%d%H%M%S%z")
        )
    return _end_date(value, zone, 0, "directory")


class DirectoryAttribute(PeopleSource):
    """People from LDAP or Active Directory, the end date from an attribute such as accountExpires."""

    name = "directory_attribute"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        url: str = Field(description="ldap:// or ldaps:// URL")
        bind_dn: str | None = None
        password: Secret | None = None
        base_dn: str
        filter: str = "(&(objectClass=person)(mail=*))"
        end_date_attribute: str = "accountExpires"
        end_date_format: Literal["ad_filetime", "generalized_time", "shadow_days", "iso"] = "ad_filetime"
        attributes: dict[str, str] = Field(
            default_factory=dict,
            description="our field -> attribute: email, employee_id, name, type, manager, timezone",
        )
        contractor_values: list[str] = Field(default_factory=lambda: ["contractor", "external", "consultant"])
        timezone: str = "UTC"
        start_tls: bool = False
        ca_file: str | None = None
        timeout: float = 10.0
        page_size: int = Field(500, ge=1, le=5000)

    settings: Settings

    DEFAULTS = {
        "email": "mail",
        "employee_id": "employeeNumber",
        "name": "displayName",
        "type": "employeeType",
        "manager": "manager",
    }

    def _attr(self, field: str) -> str | None:
        return self.settings.attributes.get(field, self.DEFAULTS.get(field))

    def _connection(self) -> Any:
        import ssl

        import ldap3
        from ldap3.core.exceptions import LDAPException

        s = self.settings
        tls = (
            ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=s.ca_file)
            if (s.ca_file or s.url.startswith("ldaps"))
            else None
        )
        server = ldap3.Server(
            s.url,
            use_ssl=s.url.startswith("ldaps"),
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=max(1, int(s.timeout)),
        )
        try:
            conn = ldap3.Connection(
                server,
                user=s.bind_dn,
                password=s.password.reveal() if s.password else None,
                receive_timeout=max(1, int(s.timeout)),
                raise_exceptions=True,
            )
            conn.open()
            if s.start_tls:
                conn.start_tls()
            conn.bind()
        except LDAPException as exc:
            raise OffboardError(f"people source {self.name}: cannot bind to {s.url}: {type(exc).__name__}") from None
        return conn

    def people(self) -> Iterator[Person]:
        from ldap3.core.exceptions import LDAPException

        s = self.settings
        wanted = sorted(
            {
                a
                for a in (
                    *(self._attr(f) for f in ("email", "employee_id", "name", "type", "manager", "timezone", "id")),
                    s.end_date_attribute,
                )
                if a
            }
        )
        conn = self._connection()
        rows, mail_of = [], {}
        try:
            for entry in conn.extend.standard.paged_search(
                s.base_dn, s.filter, attributes=wanted, paged_size=s.page_size, generator=True
            ):
                if entry.get("type") != "searchResEntry":
                    continue
                raw = {
                    k.lower(): [v.decode("utf-8", "replace") for v in vals]
                    for k, vals in entry["raw_attributes"].items()
                }
                rows.append((entry["dn"], raw))
                email = (raw.get((self._attr("email") or "").lower()) or [None])[0]
                if email:
                    mail_of[entry["dn"].lower()] = email
        except LDAPException as exc:
            raise OffboardError(
                f"people source {self.name}: search of {s.base_dn} failed: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            conn.unbind()
        for dn, raw in rows:
            yield self._person(dn, raw, mail_of)

    def _person(self, dn: str, raw: dict[str, list[str]], mail_of: dict[str, str]) -> Person:
        def get(field: str) -> str | None:
            attr = self._attr(field)
            values = raw.get(attr.lower()) if attr else None
            return values[0] if values else None

        tz = get("timezone") or self.settings.timezone
        zone = _zone(tz, f"{dn}: timezone")
        end_raw = (raw.get(self.settings.end_date_attribute.lower()) or [""])[0]
        try:
            end = directory_date(end_raw, self.settings.end_date_format, zone)
        except (ValueError, ConfigError):
            raise ConfigError(
                f"{self.settings.end_date_attribute} {end_raw!r} is not a {self.settings.end_date_format} value",
                where=dn,
            ) from None
        email = get("email")
        manager = get("manager")
        return Person(
            id=get("id") or email or dn,
            email=email,
            employee_id=get("employee_id"),
            name=get("name"),
            type=person_type(get("type"), self.settings.contractor_values),
            manager=mail_of.get(manager.lower(), manager) if manager else None,
            end_date=end,
            timezone=tz,
        )


@hookimpl
def register_people_sources(register):
    register(HRExport)
    register(DirectoryAttribute)


def configured_sources(config: Any) -> list[tuple[str, PeopleSource]]:
    """The configuration's people sources, built, each with a label naming it: ``(label, source)``."""
    classes = plugins.registered("register_people_sources")
    base = config.source.parent if config.source else None
    where = str(config.source or "config")
    out = []
    for index, item in enumerate(config.people):
        cls = classes.get(item.type)
        if cls is None:
            raise ConfigError(
                f"unknown people source {item.type!r} (installed: {', '.join(sorted(classes))})",
                where=f"{where}: people.{index}",
            )
        try:
            out.append((f"people source {item.type}", cls(item.settings, base=base)))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, where, f"people.{index}.settings")) from None
    return out


def nearest_people(ref: str, sources: Iterable[PeopleSource], store: Any = None, limit: int = 100_000) -> list[str]:
    """Known identifiers close to ``ref``: the sources' ids, emails, aliases and employee ids, and the
    inventory's person ids, account names and emails. A source that fails is skipped: a hint is never
    worth a failure."""
    from ..config._hints import nearest

    known: set[str] = set()
    for source in sources:
        try:
            for person in source.people():
                known.update(n for n in (person.id, person.email, *person.aliases, person.employee_id) if n)
                if len(known) >= limit:
                    break
        except Exception:
            continue
    if store is not None:
        try:
            for row in store.inventory.accounts():
                known.update(str(row[k]) for k in ("person_id", "email", "name") if row.get(k))
                if len(known) >= limit:
                    break
        except Exception:
            pass
    return nearest(ref, known)
