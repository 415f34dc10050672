"""Directory connector: Active Directory, OpenLDAP (ppolicy) and 389-DS over LDAPS or StartTLS."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import importlib
import ipaddress
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from offboard import (
    Account,
    AccountPage,
    Action,
    ActionKind,
    CheckResult,
    Connector,
    ConnectorSettings,
    Person,
    Receipt,
    Secret,
    Verification,
    hookimpl,
)
from offboard.errors import AuthError, NotFound, PermanentError, PermissionDenied, TransientError

from ._tls import tls_problem

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


__all__ = ["LdapConnector", "LdapSettings"]

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


class LdapConnector(Connector):
    """Disables directory accounts and removes their group memberships, reversibly."""

    name: ClassVar[str] = "ldap"
    Settings: ClassVar[type[ConnectorSettings]] = LdapSettings
    default_concurrency: ClassVar[int] = 4
    permissions: ClassVar[tuple[str, ...]] = (
        "ad: write userAccountControl, accountExpires, description on user objects",
        "ad: write member on group objects",
        "ad: Reset Password (scramble_password), create/delete user objects and write name (disabled_ou)",
        "openldap: manage pwdAccountLockedTime on people; write member, uniqueMember, memberUid on groups",
        "389ds: write nsAccountLock on people; write member, uniqueMember, memberUid on groups",
    )
    settings: LdapSettings

    def __init__(self, instance: str, settings: Any = None):
        super().__init__(instance, settings)
        self._conn: ldap3.Connection | None = None
        self._lock = threading.Lock()
        self._listings: dict[str, ldap3.Connection] = {}  # list_accounts: listing id -> its own connection
        self._admins: tuple[float, frozenset[str]] | None = None  # (when read, lowercased DNs)

    # -- connection -----------------------------------------------------------

    def _server(self) -> ldap3.Server:
        s = self.settings
        host = urlsplit(s.url).hostname or ""
        tls = ldap3.Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=str(s.ca_file) if s.ca_file else None,
            sni=None if _is_ip(host) else host,
        )
        return ldap3.Server(
            s.url,
            use_ssl=s.url.lower().startswith("ldaps://"),
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=s.connect_timeout,
        )

    def _open(self, user: str, password: str) -> ldap3.Connection:
        """A bound SAFE_SYNC connection; raises our errors, never ldap3's."""
        conn = ldap3.Connection(
            self._server(),
            user=user,
            password=password,
            client_strategy=ldap3.SAFE_SYNC,
            auto_referrals=False,
            receive_timeout=self.settings.timeout,
            raise_exceptions=False,
            return_empty_attributes=False,
            read_only=False,
        )
        try:
            conn.open()
            if self.settings.start_tls:
                conn.start_tls()
            bound, result, _, _ = conn.bind()
        except lx.LDAPException as exc:
            _unbind(conn)
            raise self._network_error(exc) from None
        if not bound:
            _unbind(conn)
            self._raise(result, f"bind as {user}")
        return conn

    def _connection(self) -> tuple[ldap3.Connection, bool]:
        """The shared connection, and whether it was opened just now."""
        with self._lock:
            fresh = self._conn is None or self._conn.closed
            if fresh:
                self._conn = self._open(self.settings.bind_dn, self.settings.password.reveal())
            return self._conn, fresh

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            _unbind(conn)

    def _call(self, op: str, *args: Any, **kw: Any) -> tuple[dict, list]:
        """Run one ldap3 operation; network trouble drops the connection and is transient.

        A reused connection the server already closed (idle timeout) is reopened once: the
        request never reached the server, so sending it again is safe.
        """
        for attempt in (1, 2):
            conn, fresh = self._connection()
            try:
                _, result, response, _ = getattr(conn, op)(*args, **kw)
                return result, response or []
            except (lx.LDAPSocketSendError, lx.LDAPSessionTerminatedByServerError) as exc:
                self.close()
                if fresh or attempt == 2:
                    raise self._network_error(exc) from None
            except lx.LDAPException as exc:
                self.close()
                raise self._network_error(exc) from None
        raise AssertionError("unreachable")

    def _network_error(self, exc: Exception) -> Exception:
        text = str(exc)
        url = self.settings.url
        problem = tls_problem(exc, url, self.settings.ca_file)  # another host's certificate, or an unknown CA
        if problem is not None:
            return PermanentError(problem, system=self.instance)
        if isinstance(exc, lx.LDAPCertificateError):
            return PermanentError(f"TLS certificate of {url} was refused: {text}", system=self.instance)
        if isinstance(exc, lx.LDAPStartTLSError):
            return PermanentError(f"StartTLS with {url} failed: {text}", system=self.instance)
        if isinstance(exc, (lx.LDAPCommunicationError, lx.LDAPResponseTimeoutError, OSError)):
            return TransientError(f"connection to {url} failed: {text}", system=self.instance)
        return PermanentError(f"LDAP error talking to {url}: {text}", system=self.instance)

    def _raise(self, result: dict, what: str, rights: tuple[str, ...] = ()) -> None:
        code, desc = result.get("result"), result.get("description")
        message = f"{what}: {desc} ({code}) {(result.get('message') or '').strip()}".strip()
        if code == 49:
            raise AuthError(message, system=self.instance)
        if code == 50:
            raise PermissionDenied(
                f"{what}: the service account lacks: {', '.join(rights) or 'access'} ({desc} {code})",
                permissions=rights,
                system=self.instance,
            )
        if code == 32:
            raise NotFound(message, system=self.instance)
        if code in _TRANSIENT_CODES:
            raise TransientError(message, system=self.instance)
        if code in (8, 13):  # strongerAuthRequired, confidentialityRequired
            raise PermanentError(f"{message}: the server requires an encrypted connection", system=self.instance)
        raise PermanentError(message, system=self.instance)

    def _modify(
        self, dn: str, changes: dict, what: str, rights: tuple[str, ...], already: frozenset[int] = frozenset()
    ) -> int:
        """Apply ``changes``; a result code in ``already`` means the change was already there."""
        result, _ = self._call("modify", dn, changes)
        if result["result"] != 0:
            if result["result"] in already:
                return result["result"]
            if result["result"] == 65 and what.startswith("remove"):  # objectClassViolation
                raise PermanentError(
                    f"{what}: the group's schema needs at least one member; "
                    "remove the group or add a placeholder member",
                    system=self.instance,
                )
            self._raise(result, what, rights)
        return 0

    def _search(self, base: str, flt: str, attrs: list[str], scope: str = "SUBTREE") -> Iterator[dict]:
        """Every entry matching ``flt``, fetched page by page."""
        cookie: bytes | None = None
        while True:
            entries, cookie = self._page(base, flt, attrs, scope, cookie)
            yield from entries
            if not cookie:
                return

    def _page(self, base: str, flt: str, attrs: list[str], scope: str, cookie: bytes | None):
        kw: dict[str, Any] = {"paged_size": self.settings.page_size, "paged_cookie": cookie}
        if scope == ldap3.BASE:
            kw = {}
        result, response = self._call("search", base, flt, search_scope=scope, attributes=attrs, **kw)
        if result["result"] == 32 and scope == ldap3.BASE:
            return [], None
        if result["result"] not in (0, 4):  # 4: sizeLimitExceeded still returns what it found
            self._raise(result, f"search {flt} under {base}")
        entries = [e for e in response if e.get("type") == "searchResEntry"]
        control = (result.get("controls") or {}).get(_PAGED) or {}
        return entries, (control.get("value") or {}).get("cookie") or None

    # -- reading accounts -----------------------------------------------------

    @property
    def _ad(self) -> bool:
        return self.settings.flavor == "ad"

    def _user_attrs(self) -> list[str]:
        common = ["mail", "cn", _ID_ATTR[self.settings.flavor]]
        if self._ad:
            return common + [
                "sAMAccountName",
                "userPrincipalName",
                "userAccountControl",
                "accountExpires",
                "description",
                "adminCount",
            ]
        return common + ["uid", _LOCK_ATTR[self.settings.flavor]]

    def _user_filter(self) -> str:
        return self.settings.user_filter or _DEFAULT_USER_FILTER[self.settings.flavor]

    def _account(self, entry: dict) -> Account:
        a = entry["attributes"]
        if self._ad:
            uac = int(_first(a, "userAccountControl") or 0)
            return Account(
                system=self.instance,
                id=_entry_id(entry, "ad"),
                name=_first(a, "sAMAccountName") or entry["dn"],
                email=_first(a, "mail") or _first(a, "userPrincipalName"),
                active=not uac & ACCOUNTDISABLE,
                admin=_first(a, "adminCount") == "1" or entry["dn"].lower() in self._ad_admins(),
                attributes={"dn": entry["dn"], "flavor": "ad"},
            )
        flavor = self.settings.flavor
        lock = _first(a, _LOCK_ATTR[flavor])
        return Account(
            system=self.instance,
            id=_entry_id(entry, flavor),
            name=_first(a, "uid") or entry["dn"],
            email=_first(a, "mail"),
            active=not _is_locked(flavor, lock),
            attributes={"dn": entry["dn"], "flavor": flavor},
        )

    def _ad_admins(self) -> frozenset[str]:
        """DNs (lowercased) of every member, direct or nested, of AD's protected groups and ``admin_groups``.

        ``adminCount`` alone misses fresh members and accounts AdminSDHolder cleanup reset; the
        transitive match (LDAP_MATCHING_RULE_IN_CHAIN) finds them. Read at most every few minutes."""
        cached = self._admins
        if cached is not None and time.monotonic() - cached[0] < _ADMIN_TTL:
            return cached[1]
        s = self.settings
        root = (
            ",".join(p for p in (x.strip() for x in s.base_dn.split(",")) if p.lower().startswith("dc=")) or s.base_dn
        )
        names = [*AD_ADMIN_GROUPS, *(g for g in s.admin_groups if "=" not in g)]
        groups = [g for g in s.admin_groups if "=" in g]
        terms = "".join(f"(cn={escape_filter_chars(n)})(sAMAccountName={escape_filter_chars(n)})" for n in names)
        groups += [e["dn"] for e in self._search(root, f"(&(objectClass=group)(|{terms}))", ["cn"])]
        members: set[str] = set()
        if groups:
            chain = "".join(f"(memberOf:{IN_CHAIN}:={escape_filter_chars(g)})" for g in dict.fromkeys(groups))
            members = {e["dn"].lower() for e in self._search(root, f"(&(objectClass=user)(|{chain}))", ["cn"])}
        admins = frozenset(members)
        self._admins = (time.monotonic(), admins)
        return admins

    def _entry(self, account: Account, extra: tuple[str, ...] = ()) -> dict:
        """The account's entry, found by its stable id (DNs move)."""
        attrs = self._user_attrs() + list(extra)
        if self._ad:
            found = list(self._search(f"<GUID={account.id}>", "(objectClass=user)", attrs, ldap3.BASE))
        else:
            id_attr = _ID_ATTR[self.settings.flavor]
            flt = f"({id_attr}={escape_filter_chars(account.id)})"
            found = list(self._search(self.settings.base_dn, flt, attrs))
        if not found:
            raise NotFound(f"account {account.name} ({account.id}) is not in the directory", system=self.instance)
        return found[0]

    def check(self) -> CheckResult:
        """Bind, read the base, and name the rights the service account lacks."""
        s = self.settings
        self._connection()  # binds: a refused bind raises AuthError here
        if not list(self._search(s.base_dn, "(objectClass=*)", ["objectClass"], ldap3.BASE)):
            return CheckResult(False, s.bind_dn, (), f"base_dn {s.base_dn} does not exist or is not readable")
        missing, notes = self._ad_rights() if self._ad else self._ldap_rights()
        return CheckResult(not missing, s.bind_dn, tuple(missing), "; ".join(notes))

    def discover(self, person: Person) -> list[Account]:
        s = self.settings
        terms: list[str] = []
        local_parts = [e.split("@", 1)[0] for e in person.emails if e.split("@", 1)[-1] in s.username_domains]
        for attr in s.discover_by or _DEFAULT_DISCOVER[s.flavor]:
            if attr in _EMAIL_ATTRS.values():
                values = [f"smtp:{e}" if attr == "proxyAddresses" else e for e in person.emails]
            elif attr in _USERNAME_ATTRS.values():
                values = [v for v in (person.id, *local_parts) if v and "@" not in v]
            else:
                values = [person.employee_id] if person.employee_id else []
            terms += [f"({attr}={escape_filter_chars(v)})" for v in values]
        if not terms:
            return []
        flt = f"(&{self._user_filter()}(|{''.join(dict.fromkeys(terms))}))"
        accounts = {}
        for entry in self._search(s.base_dn, flt, self._user_attrs()):
            if entry["dn"].lower() != s.bind_dn.lower():
                account = self._account(entry)
                accounts[account.id] = account
        return list(accounts.values())

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        """One page of accounts. A paged-results cookie belongs to one connection and one search
        (RFC 2696), so each listing gets a connection of its own, kept until its last page; the
        shared connection stays free for concurrent lookups and writes."""
        listing, raw = "", None
        if cursor:
            try:
                listing, _, encoded = cursor.partition(".")
                raw = base64.urlsafe_b64decode(encoded.encode())
            except (binascii.Error, ValueError):
                raise PermanentError(f"invalid list_accounts cursor {cursor!r}", system=self.instance) from None
            if not listing or not raw:
                raise PermanentError(f"invalid list_accounts cursor {cursor!r}", system=self.instance)
        with self._lock:
            conn = self._listings.pop(listing, None) if listing else None
        if cursor and conn is None:
            raise PermanentError(
                f"list_accounts cursor {cursor[:12]}... belongs to a listing that has ended or whose "
                "connection closed; an LDAP paged search cannot be resumed on another connection: start over",
                system=self.instance,
            )
        if conn is None:
            conn, listing = self._open(self.settings.bind_dn, self.settings.password.reveal()), secrets.token_hex(8)
        try:
            _, result, response, _ = conn.search(
                self.settings.base_dn,
                self._user_filter(),
                search_scope=ldap3.SUBTREE,
                attributes=self._user_attrs(),
                paged_size=self.settings.page_size,
                paged_cookie=raw,
            )
        except lx.LDAPException as exc:
            _unbind(conn)
            raise self._network_error(exc) from None
        if result["result"] not in (0, 4):
            _unbind(conn)
            self._raise(result, f"list accounts under {self.settings.base_dn}")
        control = (result.get("controls") or {}).get(_PAGED) or {}
        next_cookie = (control.get("value") or {}).get("cookie") or None
        entries = [e for e in response or [] if e.get("type") == "searchResEntry"]
        if not next_cookie:
            _unbind(conn)
            return AccountPage(tuple(self._account(e) for e in entries), None)
        with self._lock:
            self._listings[listing] = conn
            while len(self._listings) > _OPEN_LISTINGS:  # abandoned listings: end the oldest
                _unbind(self._listings.pop(next(iter(self._listings))))
        nxt = f"{listing}.{base64.urlsafe_b64encode(next_cookie).decode()}"
        return AccountPage(tuple(self._account(e) for e in entries), nxt)

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        entry = self._entry(action.account)
        if action.kind is ActionKind.DISABLE_ACCOUNT:
            found = self._verify_disabled(action, entry)
        elif action.kind is ActionKind.REMOVE_MEMBERSHIPS:
            groups = sorted({m["group"] for m in self._memberships(entry)})
            found = Verification(
                action,
                not groups,
                {"groups": groups},
                "in no group" if not groups else f"still in {len(groups)} group(s)",
            )
        else:
            raise PermanentError(f"ldap cannot verify {action.kind.value}", system=self.instance)
        if found.ok:
            return found
        return dataclasses.replace(
            found, detail=f"{action.account.name}: {found.detail}"
        )  # a failure names the account

    def _verify_disabled(self, action: Action, entry: dict) -> Verification:
        a, flavor = entry["attributes"], self.settings.flavor
        if flavor == "ad":
            uac = int(_first(a, "userAccountControl") or 0)
            target = self.settings.disabled_ou
            misplaced = bool(target and not _same_dn(_parent(entry["dn"]), target))
            ok = bool(uac & ACCOUNTDISABLE) and not misplaced
            detail = (
                "ACCOUNTDISABLE bit is not set"
                if not uac & ACCOUNTDISABLE
                else (f"disabled, but not in {target}" if misplaced else "ACCOUNTDISABLE bit is set")
            )
            if ok and target:
                detail += f", in {target}"
            return Verification(action, ok, {"userAccountControl": uac, "dn": entry["dn"]}, detail)
        value = _first(a, _LOCK_ATTR[flavor])
        observed: dict[str, Any] = {_LOCK_ATTR[flavor]: value}
        if not _is_locked(flavor, value, forever=True):
            state = f"is {value}" if value else "is not set"
            return Verification(action, False, observed, f"{_LOCK_ATTR[flavor]} {state}")
        if flavor == "openldap":  # a refused probe bind proves nothing where the lock is not enforced
            problem = self._lockout_problem(action.account)
            if problem:
                return Verification(action, False, observed, problem)
        outcome = self._bind_probe(entry["dn"])
        observed["bind"] = outcome
        if outcome == "success":
            return Verification(action, False, observed, "a bind as the account still succeeds")
        if outcome == "accountLocked":
            return Verification(action, True, observed, "bind refused: account locked")
        if flavor == "openldap" and not self._server_supports(PPOLICY_CONTROL):
            return Verification(action, False, observed, "the server has no ppolicy overlay: the lock is not enforced")
        return Verification(action, True, observed, f"bind refused ({outcome}); server did not say why")

    def _lockout_problem(self, account: Account) -> str | None:
        """Why ``pwdAccountLockedTime`` would not lock ``account`` (no pwdLockout: TRUE in its policy), or None.

        The effective policy is the entry's ``pwdPolicySubentry``, else ``ppolicy_dn`` (the overlay's
        ``ppolicy_default``), else the only ``pwdPolicy`` entry under the directory's root."""
        entry = self._entry(account, ("pwdPolicySubentry",))
        policy = _first(entry["attributes"], "pwdPolicySubentry") or self.settings.ppolicy_dn
        lockout: str | None = None
        if policy:
            try:
                found = list(self._search(policy, "(objectClass=*)", ["pwdLockout"], ldap3.BASE))
            except NotFound:
                found = []
            if not found:
                return f"its password policy {policy} does not exist or is not readable; pwdLockout cannot be checked"
            lockout = _first(found[0]["attributes"], "pwdLockout")
        else:
            s = self.settings
            domain = [p for p in (x.strip() for x in s.base_dn.split(",")) if p.lower().startswith("dc=")]
            found = list(self._search(",".join(domain) or s.base_dn, "(objectClass=pwdPolicy)", ["pwdLockout"]))
            if len(found) != 1:
                return (
                    f"its effective password policy cannot be told ({len(found)} pwdPolicy entries readable, no "
                    "pwdPolicySubentry): set ppolicy_dn to the overlay's ppolicy_default"
                )
            policy, lockout = found[0]["dn"], _first(found[0]["attributes"], "pwdLockout")
        if str(lockout).upper() != "TRUE":
            return (
                f"the effective password policy {policy} has pwdLockout: {lockout or 'unset'}, so "
                "pwdAccountLockedTime does not stop logins; set pwdLockout: TRUE there (and ppolicy_use_lockout)"
            )
        return None

    def _bind_probe(self, dn: str) -> str:
        """Bind as the account with a throwaway password and the ppolicy control; say how it went."""
        conn = ldap3.Connection(
            self._server(),
            user=dn,
            password=secrets.token_urlsafe(24),
            client_strategy=ldap3.SAFE_SYNC,
            auto_referrals=False,
            receive_timeout=self.settings.timeout,
            raise_exceptions=False,
        )
        try:
            conn.open()
            if self.settings.start_tls:
                conn.start_tls()
            bound, result, _, _ = conn.bind(controls=[(PPOLICY_CONTROL, False, None)])
        except lx.LDAPException as exc:
            raise self._network_error(exc) from None
        finally:
            _unbind(conn)
        if bound:
            return "success"
        control = (result.get("controls") or {}).get(PPOLICY_CONTROL) or {}
        if _ppolicy_error(control.get("value")) == 1 or "inactivated" in (result.get("message") or "").lower():
            return "accountLocked"
        return str(result.get("description"))

    def _server_supports(self, oid: str) -> bool:
        root = list(self._search("", "(objectClass=*)", ["supportedControl"], ldap3.BASE))
        return bool(root) and oid in _all(root[0]["attributes"], "supportedControl")

    # -- disable --------------------------------------------------------------

    def disable_account(self, action: Action) -> Receipt:
        if self._ad:
            return self._disable_ad(action)
        flavor = self.settings.flavor
        attr, value = _LOCK_ATTR[flavor], _LOCK_VALUE[flavor]
        entry = self._entry(action.account)
        current = _first(entry["attributes"], attr)
        before = self._disable_before(entry)
        right = f"{'manage' if flavor == 'openldap' else 'write'} {attr} on people"
        if flavor == "openldap":  # a lock only disables under a policy with pwdLockout: TRUE
            problem = self._lockout_problem(action.account)
            if problem:
                raise PermanentError(f"cannot disable {entry['dn']}: {problem}", system=self.instance)
        if current == value:
            return Receipt(action, False, before, detail=f"already locked ({attr})")
        if self.settings.scramble_password:
            self._modify(
                entry["dn"],
                {"userPassword": [(ldap3.MODIFY_REPLACE, [secrets.token_urlsafe(32)])]},
                f"scramble password of {entry['dn']}",
                ("write userPassword on people",),
            )
            before["irreversible"] = [SCRAMBLED]
        self._modify(entry["dn"], {attr: [(ldap3.MODIFY_REPLACE, [value])]}, f"lock {entry['dn']}", (right,))
        self.log.info("account locked", account=action.account.name, attribute=attr)
        return Receipt(action, True, before, detail=f"{attr} set to {value}")

    def _disable_before(self, entry: dict) -> dict[str, Any]:
        """What ``undo_disable_account`` needs, read from ``entry``."""
        a = entry["attributes"]
        if not self._ad:
            attr = _LOCK_ATTR[self.settings.flavor]
            return {"dn": entry["dn"], attr: _first(a, attr)}
        return {
            "dn": entry["dn"],
            "userAccountControl": int(_first(a, "userAccountControl") or 0),
            "accountExpires": _first(a, "accountExpires") or "0",
            "description": _all(a, "description"),
        }

    def before_disable_account(self, action: Action) -> dict[str, Any]:
        """The account's state as ``disable_account`` would record it, read now (no write)."""
        return self._disable_before(self._entry(action.account))

    def _disable_ad(self, action: Action) -> Receipt:
        s = self.settings
        entry = self._entry(action.account, ("allowedAttributesEffective",))
        a, dn = entry["attributes"], entry["dn"]
        before = self._disable_before(entry)
        uac, expires = before["userAccountControl"], before["accountExpires"]
        description = before["description"]
        changes: dict[str, list] = {}
        if not uac & ACCOUNTDISABLE:
            changes["userAccountControl"] = [(ldap3.MODIFY_REPLACE, [uac | ACCOUNTDISABLE])]
        now = _filetime(time.time())
        if s.set_account_expires and (expires in _NEVER_EXPIRES or int(expires) > now):
            changes["accountExpires"] = [(ldap3.MODIFY_REPLACE, [str(now)])]
        case = action.params.get("case")
        stamped = any(_STAMP in d for d in description)
        # stamp when this disables, or once on an account disabled by hand; never re-stamp a disabled
        # account with a later case's id: a second disable changes nothing and says so
        if (
            s.stamp_description
            and (not uac & ACCOUNTDISABLE or not stamped)
            and not any(_STAMP in d and (not case or str(case) in d) for d in description)
        ):
            stamp = f"{_STAMP} on {datetime.now(UTC):%Y-%m-%d}" + (f", case {case}" if case else "")
            changes["description"] = [(ldap3.MODIFY_REPLACE, [stamp])]
        move_to = s.disabled_ou if s.disabled_ou and not _same_dn(_parent(dn), s.disabled_ou) else None
        # Check every right first, so a missing one never leaves the account half done.
        allowed = {v.lower() for v in _all(a, "allowedAttributesEffective")}
        needed = [k for k in changes] + (["cn"] if move_to else [])  # a move writes the RDN attribute
        missing = [f"write {k} on user objects" for k in needed if k.lower() not in allowed]
        if move_to and "user" not in self._child_classes(move_to):
            missing.append(f"create user objects in {move_to}")
        if missing:
            raise PermissionDenied(
                f"cannot disable {dn}: the service account lacks: {', '.join(missing)}",
                permissions=tuple(missing),
                system=self.instance,
            )
        if s.scramble_password and "userAccountControl" in changes:  # only when this apply disables
            self._scramble_ad(dn)
            before["irreversible"] = [SCRAMBLED]
        if changes:
            self._modify(dn, changes, f"disable {dn}", tuple(f"write {k} on user objects" for k in changes))
        done = list(changes)
        if move_to:
            try:
                self._move(dn, move_to)
                done.append(f"moved to {move_to}")
            except (PermissionDenied, PermanentError, NotFound) as exc:
                # The account is disabled: keep the receipt so undo stays possible; verify reports the location.
                self.log.warning("account disabled but not moved", account=action.account.name, error=str(exc))
                done.append(f"NOT moved to {move_to}: {exc}")
        changed = bool(changes) or any(d.startswith("moved") for d in done)
        if changed:
            self.log.info("account disabled", account=action.account.name, detail=done)
        return Receipt(action, changed, before, detail=", ".join(done) or "already disabled")

    def _scramble_ad(self, dn: str) -> None:
        """Reset the password to a random one nobody learns (AD wants it quoted, in UTF-16-LE)."""
        value = f'"{_random_ad_password()}"'.encode("utf-16-le")
        self._modify(
            dn,
            {"unicodePwd": [(ldap3.MODIFY_REPLACE, [value])]},
            f"scramble the password of {dn}",
            ("Reset Password on user objects",),
        )

    def _move(self, dn: str, parent: str) -> str:
        rdn = _rdn(dn)
        result, _ = self._call("modify_dn", dn, rdn, new_superior=parent)
        if result["result"] != 0:
            self._raise(
                result,
                f"move {dn} to {parent}",
                (f"create user objects in {parent}", "delete user objects in its OU", "write name"),
            )
        return f"{rdn},{parent}"

    def _child_classes(self, dn: str) -> set[str]:
        found = list(self._search(dn, "(objectClass=*)", ["allowedChildClassesEffective"], ldap3.BASE))
        if not found:
            raise NotFound(f"disabled_ou {dn} does not exist", system=self.instance)
        return {v.lower() for v in _all(found[0]["attributes"], "allowedChildClassesEffective")}

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        action, before = receipt.action, receipt.before
        entry = self._entry(action.account)
        a, dn = entry["attributes"], entry["dn"]
        if not self._ad:
            attr = _LOCK_ATTR[self.settings.flavor]
            current, old = _first(a, attr), before.get(attr)
            if current == old:
                return Receipt(action, False, {attr: current}, detail="already as before")
            change = [(ldap3.MODIFY_REPLACE, [old])] if old else [(ldap3.MODIFY_DELETE, [])]
            verb = "manage" if self.settings.flavor == "openldap" else "write"
            self._modify(dn, {attr: change}, f"unlock {dn}", (f"{verb} {attr} on people",), already=frozenset({16}))
            return Receipt(action, True, {attr: current}, detail=f"{attr} restored")
        uac = int(_first(a, "userAccountControl") or 0)
        now = {
            "dn": dn,
            "userAccountControl": uac,
            "accountExpires": _first(a, "accountExpires"),
            "description": _all(a, "description"),
        }
        changes: dict[str, list] = {}
        if not int(before["userAccountControl"]) & ACCOUNTDISABLE and uac & ACCOUNTDISABLE:
            changes["userAccountControl"] = [(ldap3.MODIFY_REPLACE, [uac & ~ACCOUNTDISABLE])]
        if str(before["accountExpires"]) != str(now["accountExpires"]):
            changes["accountExpires"] = [(ldap3.MODIFY_REPLACE, [str(before["accountExpires"])])]
        if list(before["description"]) != now["description"]:
            old = list(before["description"])
            changes["description"] = [(ldap3.MODIFY_REPLACE, old)] if old else [(ldap3.MODIFY_DELETE, [])]
        old_parent = _parent(before["dn"])
        if not _same_dn(_parent(dn), old_parent):
            dn = self._move(dn, old_parent)
        if changes:
            self._modify(dn, changes, f"re-enable {dn}", tuple(f"write {k} on user objects" for k in changes))
        changed = bool(changes) or dn != entry["dn"]
        return Receipt(action, changed, now, detail="restored: " + (", ".join(changes) or "location"))

    # -- memberships ----------------------------------------------------------

    def _memberships(self, entry: dict, denied: list[str] | None = None) -> list[dict[str, str]]:
        """The account's direct group memberships: group DN, attribute, value.

        On AD, groups whose ``member`` the service account may not write go to ``denied``.
        """
        dn = entry["dn"]
        base = self.settings.group_base_dn or self.settings.base_dn
        dn_f = escape_filter_chars(dn)
        if self._ad:
            flt, attrs = f"(&(objectClass=group)(member={dn_f}))", ["member", "allowedAttributesEffective"]
        else:
            uid = _first(entry["attributes"], "uid")
            uid_term = f"(&(objectClass=posixGroup)(memberUid={escape_filter_chars(uid)}))" if uid else ""
            flt = (
                f"(|(&(objectClass=groupOfNames)(member={dn_f}))"
                f"(&(objectClass=groupOfUniqueNames)(uniqueMember={dn_f})){uid_term})"
            )
            attrs = ["member", "uniqueMember", "memberUid"]
        found = []
        for group in self._search(base, flt, attrs):
            ga = group["attributes"]
            if (
                self._ad
                and denied is not None
                and "member" not in {v.lower() for v in _all(ga, "allowedAttributesEffective")}
            ):
                denied.append(group["dn"])
            for attr in ("member", "uniqueMember"):
                found += [
                    {"group": group["dn"], "attribute": attr, "value": v}
                    for v in _all(ga, attr)
                    if _same_dn(v.split("#", 1)[0], dn)
                ]
            if not self._ad:
                uid = _first(entry["attributes"], "uid")
                found += [
                    {"group": group["dn"], "attribute": "memberUid", "value": v}
                    for v in _all(ga, "memberUid")
                    if v == uid
                ]
        return found

    def remove_memberships(self, action: Action) -> Receipt:
        entry = self._entry(action.account)
        denied: list[str] = []
        memberships = self._memberships(entry, denied)
        if denied:  # AD tells us up front: refuse before removing anything
            rights = tuple(f"write member on group {g}" for g in denied)
            raise PermissionDenied(
                f"cannot remove {action.account.name} from its groups: the service account lacks: {', '.join(rights)}",
                permissions=rights,
                system=self.instance,
            )
        removed: list[str] = []
        for m in memberships:
            what = f"remove {action.account.name} from {m['group']}"
            try:
                code = self._modify(
                    m["group"],
                    {m["attribute"]: [(ldap3.MODIFY_DELETE, [m["value"]])]},
                    what,
                    (f"write {m['attribute']} on group {m['group']}",),
                    already=_ALREADY_GONE,
                )
            except PermissionDenied as exc:
                if removed:  # say what already happened: the receipt is lost with the exception
                    exc.args = (f"{exc.args[0]} (already removed from: {'; '.join(removed)})",)
                raise
            if code == 0:
                removed.append(m["group"])
        if removed:
            self.log.info("memberships removed", account=action.account.name, groups=len(removed))
        before = {"dn": entry["dn"], "memberships": memberships}
        return Receipt(action, bool(removed), before, detail=f"removed from {len(removed)} group(s)")

    def before_remove_memberships(self, action: Action) -> dict[str, Any]:
        """The memberships ``remove_memberships`` would remove and record, read now (no write)."""
        entry = self._entry(action.account)
        return {"dn": entry["dn"], "memberships": self._memberships(entry)}

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        action, before = receipt.action, receipt.before
        entry = self._entry(action.account)
        restored = 0
        for m in before.get("memberships", []):
            value = m["value"]
            if m["attribute"] != "memberUid" and _same_dn(value.split("#", 1)[0], before["dn"]):
                value = entry["dn"] + (("#" + value.split("#", 1)[1]) if "#" in value else "")
            code = self._modify(
                m["group"],
                {m["attribute"]: [(ldap3.MODIFY_ADD, [value])]},
                f"add {action.account.name} back to {m['group']}",
                (f"write {m['attribute']} on group {m['group']}",),
                already=_ALREADY_THERE,
            )
            restored += code == 0
        return Receipt(action, restored > 0, {"dn": entry["dn"]}, detail=f"restored {restored} membership(s)")

    # -- rights ---------------------------------------------------------------

    def _samples(self, base: str, flt: str, attrs: list[str], limit: int) -> list[dict]:
        """Up to ``limit`` entries to test rights on: not the service account, not AD's critical objects."""
        if self._ad:
            flt = f"(&{flt}(!(isCriticalSystemObject=TRUE)))"
        result, response = self._call(
            "search", base, flt, search_scope=ldap3.SUBTREE, attributes=attrs, size_limit=limit
        )
        if result["result"] not in (0, 4):
            self._raise(result, f"search {flt} under {base}")
        return [
            e for e in response if e.get("type") == "searchResEntry" and not _same_dn(e["dn"], self.settings.bind_dn)
        ][:limit]

    def _rights(self, entries: list[dict], needed: list[tuple[str, str]], allowed) -> tuple[list[str], list[str]]:
        """A right is missing when no sampled entry grants it; partly granted ones become notes."""
        missing, notes = [], []
        for attr, right in needed:
            lacking = [e["dn"] for e in entries if not allowed(e, attr)]
            if len(lacking) == len(entries):
                missing.append(right)
            elif lacking:
                where = sorted({_parent(dn) for dn in lacking})
                notes.append(f"{right} not granted under {'; '.join(where)}")
        return missing, notes

    def _ad_rights(self) -> tuple[list[str], list[str]]:
        s = self.settings
        effective = "allowedAttributesEffective"
        allowed = lambda e, attr: attr.lower() in {v.lower() for v in _all(e["attributes"], effective)}  # noqa: E731
        users = self._samples(s.base_dn, self._user_filter(), [effective], 50)
        if not users:
            return [], [f"no user under {s.base_dn} to check rights against"]
        names = ["userAccountControl"] + ["accountExpires"] * s.set_account_expires
        names += ["description"] * s.stamp_description + ["cn"] * bool(s.disabled_ou)
        missing, notes = self._rights(users, [(n, f"write {n} on user objects") for n in names], allowed)
        groups = self._samples(s.group_base_dn or s.base_dn, "(objectClass=group)", [effective], 50)
        more, extra = self._rights(groups, [("member", "write member on group objects")], allowed)
        missing, notes = missing + more, notes + extra
        if s.disabled_ou and "user" not in self._child_classes(s.disabled_ou):
            missing.append(f"create user objects in {s.disabled_ou}")
        notes += ["not checkable without writing: Reset Password on user objects"] * s.scramble_password
        if s.disabled_ou:
            notes.append("not checkable without writing: delete user objects and write name, in their OU")
        return missing, notes

    def _ldap_rights(self) -> tuple[list[str], list[str]]:
        """Probe with deletes of values that cannot exist: refused (50) or noSuchAttribute (16)."""
        s, flavor = self.settings, self.settings.flavor
        lock, verb = _LOCK_ATTR[flavor], "manage" if flavor == "openldap" else "write"
        probes = {
            lock: "19700101000000Z" if flavor == "openldap" else "offboard-rights-probe",
            "userPassword": "offboard-rights-probe",
            "memberUid": "offboard-rights-probe",
        }

        def allowed(entry: dict, attr: str) -> bool:
            value = probes.get(attr, "cn=offboard-rights-probe")
            result, _ = self._call("modify", entry["dn"], {attr: [(ldap3.MODIFY_DELETE, [value])]})
            if result["result"] == 0:  # cannot happen with these values; say so rather than hide it
                self.log.warning("rights probe changed an entry", dn=entry["dn"], attribute=attr)
            return result["result"] != 50

        users = self._samples(s.base_dn, self._user_filter(), ["objectClass"], 5)
        if not users:
            return [], [f"no user under {s.base_dn} to check rights against"]
        needed = [(lock, f"{verb} {lock} on people")]
        needed += [("userPassword", "write userPassword on people")] * s.scramble_password
        missing, notes = self._rights(users, needed, allowed)
        group_flt = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
        groups = self._samples(s.group_base_dn or s.base_dn, group_flt, ["objectClass"], 5)
        for cls, attr in (
            ("groupofnames", "member"),
            ("groupofuniquenames", "uniqueMember"),
            ("posixgroup", "memberUid"),
        ):
            of_kind = [g for g in groups if cls in {c.lower() for c in _all(g["attributes"], "objectClass")}]
            if of_kind:
                more, extra = self._rights(of_kind, [(attr, f"write {attr} on groups")], allowed)
                missing, notes = missing + more, notes + extra
        return missing, notes


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


@hookimpl
def register_connectors(register):
    register(LdapConnector)
