"""What the directory connector's modules share: the lazily imported ldap3, the settings, the
constants of the three flavors (Active Directory, OpenLDAP with ppolicy, 389-DS) and small helpers."""

from __future__ import annotations

import importlib
import ipaddress
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from offboard import Account, ConnectorSettings, Secret

#: What an undo cannot give back after ``scramble_password`` (``Receipt.before["irreversible"]``).
SCRAMBLED = "the password was scrambled: the original cannot be restored; set a new one"


class _Lazy:
    """A module imported on first use: `offboard --help` must not pay for ldap3."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


ldap3: Any = _Lazy("ldap3")
lx: Any = _Lazy("ldap3.core.exceptions")


def escape_filter_chars(text: str) -> str:
    return importlib.import_module("ldap3.utils.conv").escape_filter_chars(text)


def parse_dn(dn: str, *args: Any, **kwargs: Any) -> Any:
    return importlib.import_module("ldap3.utils.dn").parse_dn(dn, *args, **kwargs)


ACCOUNTDISABLE = 0x2
LOCKED_FOREVER = "000001010000Z"  # ppolicy: locked until an administrator unlocks
PPOLICY_CONTROL = "1.3.6.1.4.1.42.2.27.8.5.1"
_PAGED = "1.2.840.113556.1.4.319"
_FILETIME_EPOCH = 11644473600  # seconds from 1601-01-01 to 1970-01-01
_NEVER_EXPIRES = {"0", "9223372036854775807"}
#: LDAP_MATCHING_RULE_IN_CHAIN: AD's transitive (nested) group membership match.
IN_CHAIN = "1.2.840.113556.1.4.1941"
#: AD's protected groups (those AdminSDHolder covers): their members, direct or nested, are administrators.
AD_ADMIN_GROUPS = (
    "Domain Admins",
    "Enterprise Admins",
    "Schema Admins",
    "Administrators",
    "Account Operators",
    "Backup Operators",
    "Server Operators",
    "Print Operators",
)
_ADMIN_TTL = 300.0  # seconds an AD administrators list is reused
_STAMP = "Disabled by offboard"

_EMAIL_ATTRS = {"mail": "mail", "userprincipalname": "userPrincipalName", "proxyaddresses": "proxyAddresses"}
_USERNAME_ATTRS = {"uid": "uid", "samaccountname": "sAMAccountName"}
_EMPLOYEE_ATTRS = {"employeeid": "employeeID", "employeenumber": "employeeNumber"}
_DEFAULT_DISCOVER = {
    "ad": ("mail", "proxyAddresses", "userPrincipalName", "employeeID"),
    "openldap": ("mail", "uid", "employeeNumber"),
    "389ds": ("mail", "uid", "employeeNumber"),
}
_DEFAULT_USER_FILTER = {
    "ad": "(&(objectCategory=person)(objectClass=user))",
    "openldap": "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
    "389ds": "(|(objectClass=inetOrgPerson)(objectClass=posixAccount))",
}
_ID_ATTR = {"ad": "objectGUID", "openldap": "entryUUID", "389ds": "nsUniqueId"}
_LOCK_ATTR = {"openldap": "pwdAccountLockedTime", "389ds": "nsAccountLock"}
_LOCK_VALUE = {"openldap": LOCKED_FOREVER, "389ds": "TRUE"}
_TRANSIENT_CODES = {3, 51, 52, 80}  # timeLimitExceeded, busy, unavailable, other
_ALREADY_GONE = frozenset({16, 53})  # member delete: OpenLDAP noSuchAttribute, AD/Samba unwillingToPerform
_ALREADY_THERE = frozenset({20, 68})  # member add: attributeOrValueExists, Samba entryAlreadyExists


class LdapSettings(ConnectorSettings):
    """How to reach the directory and what disabling means there."""

    url: str = Field(description="ldaps://host:636, or ldap://host:389 with start_tls")
    flavor: Literal["ad", "openldap", "389ds"]
    bind_dn: str
    password: Secret
    base_dn: str = Field(description="where people's accounts live")
    group_base_dn: str | None = Field(None, description="where groups live; default base_dn")
    ca_file: Path | None = Field(None, description="PEM CA bundle to verify the server; default: system CAs")
    start_tls: bool = False
    allow_plain: bool = Field(False, description="allow unencrypted LDAP (never in production)")
    connect_timeout: float = Field(5.0, gt=0)
    timeout: int = Field(15, ge=1, description="seconds to wait for any answer")
    page_size: int = Field(500, ge=1, le=5000)
    user_filter: str | None = None
    discover_by: tuple[str, ...] | None = None
    username_domains: tuple[str, ...] = Field((), description="email domains whose local part is the username")
    set_account_expires: bool = True
    stamp_description: bool = True
    scramble_password: bool = False
    disabled_ou: str | None = Field(None, description="AD only: move disabled accounts here")
    ppolicy_dn: str | None = Field(
        None,
        description="OpenLDAP: the ppolicy overlay's ppolicy_default (the policy of accounts without "
        "pwdPolicySubentry); default: the one pwdPolicy entry in the directory",
    )
    admin_groups: tuple[str, ...] = Field(
        (), description="AD: more groups (names or DNs) whose members, direct or nested, count as administrators"
    )

    @field_validator("discover_by")
    @classmethod
    def _known_attributes(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        known = {**_EMAIL_ATTRS, **_USERNAME_ATTRS, **_EMPLOYEE_ATTRS}
        if value is not None:
            unknown = [v for v in value if v.lower() not in known]
            if unknown or not value:
                raise ValueError(f"unknown attribute(s) {unknown}; choose from {sorted(known.values())}")
            value = tuple(known[v.lower()] for v in value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LdapSettings:
        scheme = self.url.split("://", 1)[0].lower()
        if scheme not in ("ldap", "ldaps"):
            raise ValueError(f"url must start with ldaps:// or ldap://, got {self.url!r}")
        if scheme == "ldaps" and self.start_tls:
            raise ValueError("start_tls is for ldap:// urls; ldaps:// is already encrypted")
        if scheme == "ldap" and not (self.start_tls or self.allow_plain):
            raise ValueError(f"{self.url} is unencrypted: use ldaps://, set start_tls: true, or allow_plain: true")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise ValueError(f"ca_file {self.ca_file} does not exist")
        if self.disabled_ou and self.flavor != "ad":
            raise ValueError("disabled_ou is only supported for flavor ad (AD keeps group links on moves)")
        return self


_OPEN_LISTINGS = 8  # unfinished list_accounts listings kept open at once


class DirectoryParts:
    """What LdapConnector provides to its mixins (``LdapChecks``, ``ActiveDirectory``), declared once for the
    type checker; nothing at run time."""

    if TYPE_CHECKING:
        settings: LdapSettings
        instance: str
        log: Any
        _admins: tuple[float, frozenset[str]] | None

        @property
        def _ad(self) -> bool: ...
        def _server(self) -> Any: ...
        def _network_error(self, exc: Exception) -> Exception: ...
        def _call(self, op: str, *args: Any, **kw: Any) -> tuple[dict, list]: ...
        def _raise(self, result: dict, what: str, rights: tuple[str, ...] = ()) -> None: ...
        def _modify(
            self, dn: str, changes: dict, what: str, rights: tuple[str, ...], already: frozenset[int] = frozenset()
        ) -> int: ...
        def _search(self, base: str, flt: str, attrs: list[str], scope: str = "SUBTREE") -> Iterator[dict]: ...
        def _user_filter(self) -> str: ...
        def _entry(self, account: Account, extra: tuple[str, ...] = ()) -> dict: ...
        def _disable_before(self, entry: dict) -> dict[str, Any]: ...
        def _child_classes(self, dn: str) -> set[str]: ...


# -- helpers ------------------------------------------------------------------


def _all(attrs: dict, name: str) -> list[str]:
    value = attrs.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _unbind(conn: ldap3.Connection) -> None:
    """Close quietly: the socket may already be gone."""
    try:
        conn.unbind()
    except (lx.LDAPException, OSError):
        pass


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _first(attrs: dict, name: str) -> str | None:
    values = _all(attrs, name)
    return values[0] if values else None


def _entry_id(entry: dict, flavor: str) -> str:
    if flavor == "ad":
        raw = entry["raw_attributes"]["objectGUID"][0]
        return str(uuid.UUID(bytes_le=raw))
    return _first(entry["attributes"], _ID_ATTR[flavor]) or entry["dn"]


def _is_locked(flavor: str, value: str | None, forever: bool = False) -> bool:
    if flavor == "389ds":
        return (value or "").lower() == "true"
    return value == LOCKED_FOREVER if forever else bool(value)


def _ppolicy_error(value: bytes | None) -> int | None:
    """The error code in a ppolicy response control (``[1] ENUMERATED``), if any."""
    if not value or len(value) < 2 or value[0] != 0x30:
        return None
    body, i = value[2:], 0
    while i + 1 < len(body):
        tag, length = body[i], body[i + 1]
        if tag == 0x81 and length == 1 and i + 2 < len(body):
            return body[i + 2]
        i += 2 + length
    return None


def _parent(dn: str) -> str:
    parts = parse_dn(dn)
    return ",".join(f"{k}={v}" for k, v, _ in parts[1:])


def _rdn(dn: str) -> str:
    k, v, _ = parse_dn(dn)[0]
    return f"{k}={v}"


def _same_dn(a: str, b: str) -> bool:
    norm = lambda d: ",".join(f"{k.lower()}={v.lower()}" for k, v, _ in parse_dn(d))  # noqa: E731
    try:
        return norm(a) == norm(b)
    except lx.LDAPException:
        return a.lower() == b.lower()


def _filetime(epoch: float) -> int:
    return int((epoch + _FILETIME_EPOCH) * 10_000_000)


def _random_ad_password() -> str:
    return "Ob1!" + secrets.token_urlsafe(30)
