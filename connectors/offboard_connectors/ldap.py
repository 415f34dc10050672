"""Directory connector: Active Directory, OpenLDAP (ppolicy) and 389-DS over LDAPS or StartTLS."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
import ssl
import threading
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

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
    Verification,
    hookimpl,
)
from offboard.errors import AuthError, NotFound, PermanentError, PermissionDenied, TransientError

from ._ldap_ad import ActiveDirectory
from ._ldap_checks import LdapChecks
from ._ldap_support import (
    _ALREADY_GONE,
    _ALREADY_THERE,
    _DEFAULT_DISCOVER,
    _DEFAULT_USER_FILTER,
    _EMAIL_ATTRS,
    _ID_ATTR,
    _LOCK_ATTR,
    _LOCK_VALUE,
    _OPEN_LISTINGS,
    _PAGED,
    _TRANSIENT_CODES,
    _USERNAME_ATTRS,
    ACCOUNTDISABLE,
    SCRAMBLED,
    LdapSettings,
    _all,
    _entry_id,
    _first,
    _is_ip,
    _is_locked,
    _parent,
    _same_dn,
    _unbind,
    escape_filter_chars,
    ldap3,
    lx,
)
from ._tls import tls_problem

__all__ = ["LdapConnector", "LdapSettings"]


class LdapConnector(ActiveDirectory, LdapChecks, Connector):
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


@hookimpl
def register_connectors(register):
    register(LdapConnector)
