"""Fixtures for the ldap connector: a real slapd and a real Samba AD DC, started once per session.

Imported by test_ldap.py (tests/connectors/conftest.py belongs to the shared connector tests).
"""

from __future__ import annotations

import contextlib
import secrets
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.extend.microsoft.modifyPassword import ad_modify_password

from offboard import Secret
from offboard.models import Account, Person
from offboard_connectors.ldap import LdapConnector

try:
    from ._directories import DirectoryUnavailable, SambaDC, Slapd
except ImportError:  # tests/connectors is not a package: pytest put it on sys.path
    from _directories import DirectoryUnavailable, SambaDC, Slapd

__all__ = [
    "slapd_server",
    "samba_dc",
    "directory",
    "connector",
    "person",
    "target_state",
    "fault",
    "secret_values",
    "Directory",
]

TIMEOUT = 3  # seconds: keeps the unavailable-server test short


def _start(server: Any, what: str) -> Any:
    try:
        return server.start()
    except DirectoryUnavailable as exc:
        server.stop()
        pytest.fail(f"cannot start the {what} the ldap tests need: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory) -> Iterator[Slapd]:
    server = _start(Slapd(tmp_path_factory.mktemp("slapd")), "OpenLDAP server (slapd)")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory) -> Iterator[SambaDC]:
    if not sys.platform.startswith("linux"):
        pytest.skip(f"SAMBA AD DC TESTS SKIPPED: a Samba AD DC runs only on Linux, not {sys.platform}")
    server = _start(SambaDC(tmp_path_factory.mktemp("samba")), "Samba AD domain controller")
    try:
        yield server
    finally:
        server.stop()


class Directory:
    """One test directory, seen from outside the connector: admin writes and independent reads."""

    def __init__(self, flavor: str, server: Slapd | SambaDC):
        self.flavor, self.server = flavor, server
        self.ad = flavor == "ad"
        self.base = server.base if self.ad else server.suffix
        self.people = f"OU=Staff,{self.base}" if self.ad else f"ou=people,{self.base}"
        self.groups_base = f"OU=Groups,{self.base}" if self.ad else f"ou=groups,{self.base}"
        self.disabled_ou = f"OU=Disabled Users,{self.base}" if self.ad else None
        admin = (server.admin_dn, server.admin_pw) if self.ad else (server.rootdn, server.rootpw)
        self.admin = self.bind(*admin)
        assert self.admin is not None, f"the {flavor} test directory refused its administrator"
        self.groups = self._make_groups()
        self.make_person()  # a directory has people before anyone is offboarded: check() samples them

    def tls(self, ca: Path | None = None) -> ldap3.Tls:
        return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(ca or self.server.ca.path))

    def bind(self, dn: str, password: str) -> ldap3.Connection | None:
        """A connection bound as ``dn``, or None when the directory refuses the bind."""
        server = ldap3.Server(self.server.ldaps_url, use_ssl=True, tls=self.tls(), connect_timeout=5)
        conn = ldap3.Connection(server, dn, password, receive_timeout=10)
        return conn if conn.bind() else None

    def settings(self, **overrides: Any) -> dict[str, Any]:
        s = self.server
        base = {
            "url": s.ldaps_url,
            "flavor": self.flavor,
            "bind_dn": s.writer_dn,
            "password": Secret(s.writer_pw, source="test"),
            "base_dn": self.base,
            "ca_file": str(s.ca.path),
            "timeout": TIMEOUT,
            "connect_timeout": TIMEOUT,
            "username_domains": ["example.com"],
        }
        if self.ad:
            base["disabled_ou"] = self.disabled_ou
        else:  # the overlay's ppolicy_default: the policy of accounts without pwdPolicySubentry
            base["ppolicy_dn"] = f"cn=default,ou=policies,{self.base}"
        return {**base, **overrides}

    def _make_groups(self) -> list[str]:
        a = self.admin
        if self.ad:
            made = []
            for name in ("engineering", "vpn-users"):
                dn = f"CN={name}-{secrets.token_hex(3)},{self.groups_base}"
                assert a.add(dn, ["group"], {"sAMAccountName": dn[3:].split(",")[0]}), a.result
                made.append(dn)
            return made
        keep = self.server.reader_dn  # groupOfNames must keep one member
        tag = secrets.token_hex(3)
        specs = [
            (f"cn=engineering-{tag}", ["groupOfNames"], {"member": [keep]}),
            (f"cn=vpn-{tag}", ["groupOfUniqueNames"], {"uniqueMember": [keep]}),
            (f"cn=developers-{tag}", ["posixGroup"], {"gidNumber": 5000}),
        ]
        made = []
        for rdn, classes, attrs in specs:
            dn = f"{rdn},{self.groups_base}"
            assert a.add(dn, classes, {"cn": rdn[3:], **attrs}), a.result
            made.append(dn)
        return made

    def make_person(self, groups: bool = True) -> tuple[Person, str, str]:
        """A fresh active account in every test group: (person, dn, password)."""
        name = "p" + secrets.token_hex(5)
        email, employee = f"{name}@example.com", f"E-{secrets.token_hex(4)}"
        password = "Pw1!" + secrets.token_urlsafe(12)
        a = self.admin
        if self.ad:
            dn = f"CN={name},{self.people}"
            assert a.add(
                dn,
                ["top", "person", "organizationalPerson", "user"],
                {
                    "sAMAccountName": name,
                    "userPrincipalName": f"{name}@offboard.test",
                    "mail": email,
                    "employeeID": employee,
                    "proxyAddresses": [f"SMTP:{email}", f"smtp:{name}.alias@example.com"],
                },
            ), a.result
            assert ad_modify_password(a, dn, password, None), a.result
            assert a.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [512])]}), a.result
            for g in self.groups if groups else []:
                assert a.modify(g, {"member": [(ldap3.MODIFY_ADD, [dn])]}), a.result
        else:
            dn = f"uid={name},{self.people}"
            assert a.add(
                dn,
                ["inetOrgPerson", "posixAccount"],
                {
                    "cn": name,
                    "sn": name,
                    "uid": name,
                    "mail": email,
                    "employeeNumber": employee,
                    "userPassword": password,
                    "uidNumber": 10000,
                    "gidNumber": 5000,
                    "homeDirectory": f"/home/{name}",
                },
            ), a.result
            for g in self.groups if groups else []:
                attr = {"engineering": "member", "vpn": "uniqueMember", "developers": "memberUid"}[
                    g.split("=", 1)[1].split("-", 1)[0]
                ]
                value = name if attr == "memberUid" else dn
                assert a.modify(g, {attr: [(ldap3.MODIFY_ADD, [value])]}), a.result
        return Person(id=email, email=email, employee_id=employee, name=name), dn, password

    def find_dn(self, account: Account) -> str:
        a = self.admin
        if self.ad:
            a.search(f"<GUID={account.id}>", "(objectClass=*)", ldap3.BASE, attributes=["distinguishedName"])
        else:
            a.search(self.base, f"(entryUUID={account.id})", attributes=["uid"])
        assert len(a.entries) == 1, f"{account.name} not found"
        return a.entries[0].entry_dn

    def state(self, account: Account) -> dict[str, Any]:
        """The account as an administrator reads it: enabled flag, groups, location."""
        a = self.admin
        dn = self.find_dn(account)
        if self.ad:
            a.search(
                dn,
                "(objectClass=*)",
                ldap3.BASE,
                attributes=["userAccountControl", "accountExpires", "description", "memberOf"],
            )
            e = a.entries[0]
            return {
                "dn": dn,
                "userAccountControl": e.userAccountControl.value,
                "accountExpires": str(e.accountExpires.raw_values),
                "description": e.description.values,
                "groups": sorted(e.memberOf.values),
            }
        a.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["pwdAccountLockedTime", "uid"])
        e = a.entries[0]
        uid = e.uid.value
        a.search(self.groups_base, f"(|(member={dn})(uniqueMember={dn})(memberUid={uid}))", attributes=["cn"])
        return {"dn": dn, "locked": e.pwdAccountLockedTime.raw_values, "groups": sorted(x.entry_dn for x in a.entries)}

    def uac(self, dn: str) -> int:
        self.admin.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["userAccountControl"])
        return int(self.admin.entries[0].userAccountControl.value)


@pytest.fixture(scope="session", params=["openldap", "ad"])
def directory(request) -> Directory:
    server = request.getfixturevalue("slapd_server" if request.param == "openldap" else "samba_dc")
    return Directory(request.param, server)


@pytest.fixture
def connector(directory) -> Iterator[LdapConnector]:
    conn = LdapConnector(f"{directory.flavor}-test", directory.settings())
    yield conn
    conn.close()


@pytest.fixture
def person(directory) -> Person:
    return directory.make_person()[0]


@pytest.fixture
def target_state(directory):
    return directory.state


@pytest.fixture
def secret_values(directory) -> list[str]:
    return [directory.server.writer_pw]


@pytest.fixture
def lie(directory):
    """Writes in the block are accepted, then undone behind the connector's back (another writer, a lagging replica)."""
    a = directory.admin
    locked = "(userAccountControl:1.2.840.113556.1.4.803:=2)" if directory.ad else "(pwdAccountLockedTime=*)"

    def disabled() -> set[str]:
        a.search(
            directory.base,
            f"(&(objectClass=person){locked})",
            attributes=["userAccountControl"] if directory.ad else [],
        )
        return {e.entry_dn for e in a.entries}

    @contextlib.contextmanager
    def lying():
        before = disabled()
        yield
        for dn in disabled() - before:
            if directory.ad:
                assert a.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [directory.uac(dn) & ~2])]}), (
                    a.result
                )
            else:
                assert a.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_DELETE, [])]}), a.result

    return lying


@pytest.fixture
def fault(directory):
    @contextlib.contextmanager
    def make(status: int, retry_after: float | None = None):
        if status == 429:
            pytest.skip("LDAP has no rate-limit answer: servers queue or refuse (busy is mapped to TransientError)")
        if status in (401, 403):
            pytest.skip(
                "LDAP answers bind and rights problems with result codes 49 and 50, not HTTP: "
                "test_wrong_password_is_an_auth_error_without_the_secret and "
                "test_service_account_without_write_rights cover those mappings"
            )
        if status < 500:
            raise AssertionError(f"no LDAP equivalent for HTTP {status}")
        directory.server.pause()  # the server stops answering: the connector must time out
        try:
            yield
        finally:
            directory.server.resume()

    return make
