"""The ldap connector against a real slapd (ppolicy) and a real Samba AD DC."""

from __future__ import annotations

import json
import os

import ldap3
import pytest
from pydantic import ValidationError

from offboard import Secret
from offboard.errors import AuthError, PermanentError, PermissionDenied, TransientError
from offboard.models import Action, ActionKind, Person
from offboard.plugins import connector_classes
from offboard.testing import ConnectorContract
from offboard_connectors.ldap import LdapConnector

try:
    from ._directories import CertificateAuthority, free_port
    from .conftest_ldap import (  # noqa: F401  (fixtures)
        Directory,
        connector,
        fault,
        lie,
        person,
        secret_values,
        target_state,
    )
except ImportError:  # tests/connectors is not a package
    from _directories import CertificateAuthority, free_port
    from conftest_ldap import (  # noqa: F401
        Directory,
        connector,
        fault,
        lie,
        person,
        secret_values,
        target_state,
    )

pytestmark = [pytest.mark.ldap]

DISABLE, MEMBERSHIPS = ActionKind.DISABLE_ACCOUNT, ActionKind.REMOVE_MEMBERSHIPS
AD_ONLY = pytest.mark.parametrize("directory", ["ad"], indirect=True)
OPENLDAP_ONLY = pytest.mark.parametrize("directory", ["openldap"], indirect=True)


class TestLdapContract(ConnectorContract):
    """The conformance kit, once against slapd and once against Samba (``directory`` is parametrized)."""

    retry_after_reported = False

    @pytest.fixture
    def list_connector(self, directory: Directory):
        for _ in range(5):  # enough accounts for three pages of two
            directory.make_person(groups=False)
        lister = LdapConnector("pages", directory.settings(page_size=2))
        yield lister
        lister.close()


def _action(connector: LdapConnector, person: Person, kind: ActionKind, **params) -> Action:
    [account] = connector.discover(person)
    return Action(kind, account, params)


def test_registered_as_ldap():
    assert connector_classes()["ldap"] is LdapConnector


@AD_ONLY
def test_ad_user_account_control_512_to_514_and_back(directory: Directory, connector):
    person, dn, password = directory.make_person()
    assert directory.uac(dn) == 512
    assert directory.bind(dn, password) is not None
    action = _action(connector, person, DISABLE, case="C-42")
    receipt = connector.apply(action)
    moved = f"CN={person.name},{directory.disabled_ou}"
    assert directory.uac(moved) == 514
    assert directory.bind(moved, password) is None, "a disabled AD user could still bind"
    state = directory.state(action.account)
    assert any("case C-42" in d for d in state["description"]) and state["dn"] == moved
    assert connector.verify(action, receipt).observed["userAccountControl"] == 514
    connector.undo(receipt)
    assert directory.uac(dn) == 512, "undo did not restore 512 at the original location"
    assert directory.bind(dn, password) is not None


@AD_ONLY
def test_ad_disable_keeps_other_flags(directory: Directory, connector):
    person, dn, _ = directory.make_person(groups=False)
    directory.admin.modify(dn, {"userAccountControl": [(ldap3.MODIFY_REPLACE, [512 | 0x10000])]})
    receipt = connector.apply(_action(connector, person, DISABLE))
    assert directory.uac(receipt.before["dn"].replace("OU=Staff", "OU=Disabled Users")) == 512 | 0x10000 | 2
    connector.undo(receipt)
    assert directory.uac(dn) == 512 | 0x10000


@OPENLDAP_ONLY
def test_openldap_locked_user_cannot_bind_until_undo(directory: Directory, connector):
    person, dn, password = directory.make_person()
    assert directory.bind(dn, password) is not None
    action = _action(connector, person, DISABLE)
    receipt = connector.apply(action)
    assert directory.bind(dn, password) is None, "a locked OpenLDAP user could still bind"
    verification = connector.verify(action, receipt)
    assert verification.ok and verification.observed["bind"] == "accountLocked"
    assert verification.observed["pwdAccountLockedTime"] == "000001010000Z"
    connector.undo(receipt)
    assert directory.bind(dn, password) is not None, "the user still cannot bind after undo"
    assert not connector.verify(action).ok


def test_memberships_removed_and_restored(directory: Directory, connector):
    person, _, _ = directory.make_person()
    action = _action(connector, person, MEMBERSHIPS)
    assert directory.state(action.account)["groups"] == sorted(directory.groups)
    receipt = connector.apply(action)
    assert directory.state(action.account)["groups"] == []
    assert {m["group"] for m in receipt.before["memberships"]} == set(directory.groups)
    if not directory.ad:
        assert {m["attribute"] for m in receipt.before["memberships"]} == {"member", "uniqueMember", "memberUid"}
    connector.undo(receipt)
    assert directory.state(action.account)["groups"] == sorted(directory.groups)
    assert connector.undo(receipt).changed is False, "a second undo added members again"


def test_already_not_a_member_counts_as_done(directory: Directory, connector, monkeypatch):
    person, _, _ = directory.make_person()
    action = _action(connector, person, MEMBERSHIPS)
    entry = connector._entry(action.account)
    stale = connector._memberships(entry)
    first = connector.apply(action)  # the memberships are gone now ...
    assert first.changed
    monkeypatch.setattr(
        connector, "_memberships", lambda entry, denied=None: stale
    )  # ... but a stale read still lists them
    again = connector.apply(action)  # Samba answers unwillingToPerform, slapd noSuchAttribute
    assert again.changed is False


def test_wrong_ca_fails_with_a_clear_message(directory: Directory, tmp_path):
    other = CertificateAuthority(tmp_path, "some other CA")
    conn = LdapConnector("wrong-ca", directory.settings(ca_file=str(other.path)))
    with pytest.raises(PermanentError) as info:
        conn.check()
    message = str(info.value)
    assert "not trusted" in message and str(other.path) in message and directory.server.ldaps_url in message


def test_wrong_ca_with_start_tls(directory: Directory, tmp_path):
    other = CertificateAuthority(tmp_path, "some other CA")
    url = directory.server.ldap_url
    conn = LdapConnector("wrong-ca-starttls", directory.settings(url=url, start_tls=True, ca_file=str(other.path)))
    with pytest.raises(PermanentError, match="not trusted"):
        conn.check()
    with pytest.raises(PermanentError, match="not trusted"):
        conn.discover(Person(id="anyone", email="anyone@example.com"))


def test_closed_port_is_transient(directory: Directory):
    url = f"ldaps://127.0.0.1:{free_port()}"
    with pytest.raises(TransientError, match="connection to .* failed"):
        LdapConnector("closed", directory.settings(url=url)).check()


def test_bad_cursor_is_a_clear_error(connector):
    with pytest.raises(PermanentError, match="invalid list_accounts cursor"):
        connector.list_accounts("%%%not-base64")


def test_service_account_without_write_rights(directory: Directory):
    s = directory.server
    reader = LdapConnector("reader", directory.settings(bind_dn=s.reader_dn, password=Secret(s.reader_pw)))
    result = reader.check()
    assert not result.ok
    lock = "write userAccountControl on user objects" if directory.ad else "manage pwdAccountLockedTime on people"
    assert lock in result.missing
    assert any("member" in m for m in result.missing)
    person, _, _ = directory.make_person()
    with pytest.raises(PermissionDenied) as info:
        reader.apply(_action(reader, person, DISABLE))
    assert lock in info.value.permissions and lock in str(info.value)
    with pytest.raises(PermissionDenied) as info:
        reader.apply(_action(reader, person, MEMBERSHIPS))
    assert "member" in str(info.value)
    state = directory.state(_action(reader, person, DISABLE).account)
    assert state["groups"] == sorted(directory.groups), "a refused write changed something"


def test_check_names_nothing_missing_for_the_offboard_account(connector):
    result = connector.check()
    assert result.ok and result.missing == () and result.identity == connector.settings.bind_dn


def test_wrong_password_is_an_auth_error_without_the_secret(directory: Directory):
    bad = "Wr0ng-" + directory.server.writer_pw
    conn = LdapConnector("bad", directory.settings(password=Secret(bad)))
    with pytest.raises(AuthError) as info:
        conn.check()
    assert "invalidCredentials" in str(info.value) and bad not in str(info.value)
    assert not isinstance(info.value, PermissionDenied)


def test_start_tls(directory: Directory, person):
    conn = LdapConnector("starttls", directory.settings(url=directory.server.ldap_url, start_tls=True))
    assert conn.check().ok
    assert conn.discover(person)


def test_plain_ldap_needs_explicit_permission(directory: Directory):
    with pytest.raises(ValidationError, match="unencrypted"):
        LdapConnector("plain", directory.settings(url=directory.server.ldap_url))


def test_discover_by_each_configured_attribute(directory: Directory, connector):
    person, dn, _ = directory.make_person(groups=False)
    by_employee = Person(id="someone", employee_id=person.employee_id)
    by_username = Person(id=person.name)
    found = {a.attributes["dn"] for a in connector.discover(by_employee)}
    assert found == {dn}
    if directory.ad:
        by_proxy = Person(id="x", email=f"{person.name}.alias@EXAMPLE.com")
        assert [a.attributes["dn"] for a in connector.discover(by_proxy)] == [dn]
        sam = LdapConnector("sam", directory.settings(discover_by=["sAMAccountName"]))
        assert [a.name for a in sam.discover(by_username)] == [person.name]
    else:
        assert [a.attributes["dn"] for a in connector.discover(by_username)] == [dn]
        local = Person(id="x", email=f"{person.name}@example.com")
        uid_only = LdapConnector("uid", directory.settings(discover_by=["uid"]))
        assert [a.name for a in uid_only.discover(local)] == [person.name]
        elsewhere = Person(id="x", email=f"{person.name}@elsewhere.example")
        assert uid_only.discover(elsewhere) == [], "a username matched at a domain not configured for it"


def test_unknown_discover_attribute_is_a_clear_error(directory: Directory):
    with pytest.raises(ValidationError, match="unknown attribute"):
        LdapConnector("x", directory.settings(discover_by=["telephoneNumber"]))


def test_list_accounts_pages(directory: Directory):
    for _ in range(3):
        directory.make_person(groups=False)
    conn = LdapConnector("pages", directory.settings(page_size=2))
    seen, cursor, pages = [], None, 0
    while True:
        page = conn.list_accounts(cursor)
        assert len(page.accounts) <= 2
        seen += [a.id for a in page.accounts]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert pages >= 2 and len(seen) == len(set(seen)) >= 3


@AD_ONLY
def test_ad_password_scramble(directory: Directory):
    conn = LdapConnector("scramble", directory.settings(scramble_password=True, disabled_ou=None))
    person, dn, password = directory.make_person(groups=False)
    assert conn.check().ok
    receipt = conn.apply(_action(conn, person, DISABLE))
    conn.undo(receipt)
    assert directory.uac(dn) == 512
    assert directory.bind(dn, password) is None, "the old password still works after a scramble"
    assert password not in json.dumps(receipt.to_dict())


@AD_ONLY
def test_ad_move_without_create_right_is_refused_before_any_write(directory: Directory):
    no_rights_ou = f"OU=Service Accounts,{directory.base}"
    conn = LdapConnector("bad-ou", directory.settings(disabled_ou=no_rights_ou))
    assert f"create user objects in {no_rights_ou}" in conn.check().missing
    person, dn, _ = directory.make_person(groups=False)
    with pytest.raises(PermissionDenied, match="create user objects in OU=Service Accounts"):
        conn.apply(_action(conn, person, DISABLE))
    assert directory.uac(dn) == 512, "the account was changed although the move could not happen"


def test_a_dropped_idle_connection_is_reopened(connector, person):
    import socket

    assert connector.discover(person)
    connector._conn.socket.shutdown(socket.SHUT_RDWR)  # as when the server drops an idle connection
    assert connector.discover(person), "a stale connection was not reopened"


def test_revoke_disables_one_person_in_both_directories_and_every_sandbox_system(
    slapd_server, samba_dc, tmp_path, home
):
    """`offboard revoke` with a config holding slapd, Samba AD and every simulated SaaS system."""
    import subprocess
    import sys

    import yaml

    from offboard.sandbox import Sandbox

    directories = {"openldap": Directory("openldap", slapd_server), "ad": Directory("ad", samba_dc)}
    with Sandbox(people=12, seed=3) as sandbox:
        person = next(p for p in sandbox.company.people if p.type == "employee" and p.manager)
        config = sandbox.config()
        dns = {}
        for flavor, d in directories.items():
            _, dn, _ = d.make_person()
            assert d.admin.modify(dn, {"mail": [(ldap3.MODIFY_REPLACE, [person.email])]}), d.admin.result
            dns[flavor] = dn
            secret = tmp_path / f"{flavor}.pw"
            secret.write_text(d.server.writer_pw)
            config["connectors"][f"corp-{flavor}"] = {
                "type": "ldap",
                "settings": {**d.settings(), "password": f"file:{secret}"},
            }
        path = tmp_path / "offboard.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {"OFFBOARD_HOME": str(home), "PATH": "/usr/bin:/bin"}
        if os.environ.get("PYTHONPATH"):  # a worktree's sources, not the installed copy
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        revoke = subprocess.run(
            [sys.executable, "-m", "offboard", "--config", str(path), "revoke", person.id, "--yes", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
        assert revoke.returncode == 0, revoke.stdout + revoke.stderr
        case = json.loads(revoke.stdout)
        held = set(next(i for i in sandbox.company.identities if i.person == person).systems)
        assert {a["system"] for a in case["actions"]} == held | {"corp-openldap", "corp-ad"}
        assert {"entra", "google_workspace", "slack", "scim"} <= held
        status = subprocess.run(
            [sys.executable, "-m", "offboard", "--config", str(path), "status", case["case"], "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert status.returncode == 0
        assert {a["status"] for a in json.loads(status.stdout)["actions"]} == {"verified"}
        assert sandbox.account("entra", person.email)["accountEnabled"] is False
        assert sandbox.account("google_workspace", person.email)["suspended"] is True
    ad = directories["ad"]
    ad.admin.search(ad.base, f"(mail={person.email})", attributes=["userAccountControl"])
    assert ad.admin.entries[0].userAccountControl.value & 2  # ACCOUNTDISABLE, read straight from the DC
    assert "OU=Disabled Users" in ad.admin.entries[0].entry_dn and dns["ad"] != ad.admin.entries[0].entry_dn


def test_list_accounts_cookie_survives_other_searches_and_a_dropped_shared_connection(directory: Directory):
    """A paged-results cookie belongs to one connection and one search: a listing must not share
    the connection that lookups use, nor lose its cookie when that connection is reopened."""
    people = [directory.make_person(groups=False)[0] for _ in range(3)]
    conn = LdapConnector("interleaved", directory.settings(page_size=2))
    try:
        page = conn.list_accounts()
        seen = [a.id for a in page.accounts]
        pages = 1
        while page.cursor is not None:
            for person in people:  # paged searches on the shared connection between pages
                assert conn.discover(person)
            conn.close()  # and the shared connection dropped (idle timeout): it is reopened
            page = conn.list_accounts(page.cursor)
            seen += [a.id for a in page.accounts]
            pages += 1
        assert pages >= 3 and len(seen) == len(set(seen))
        everyone = LdapConnector("whole", directory.settings(page_size=1000)).list_accounts()
        assert sorted(seen) == sorted(a.id for a in everyone.accounts)
    finally:
        conn.close()


def test_a_cursor_of_an_ended_listing_is_a_clear_error(directory: Directory):
    for _ in range(3):
        directory.make_person(groups=False)
    first = LdapConnector("a", directory.settings(page_size=2)).list_accounts()
    assert first.cursor
    with pytest.raises(PermanentError, match="cannot be resumed on another connection"):
        LdapConnector("b", directory.settings(page_size=2)).list_accounts(first.cursor)


@AD_ONLY
def test_ad_a_nested_domain_admins_member_without_admincount_is_an_administrator(directory: Directory):
    import secrets

    from offboard.config._policy import Protection

    a = directory.admin
    person, dn, _ = directory.make_person(groups=False)
    plain, _, _ = directory.make_person(groups=False)
    configured, configured_dn, _ = directory.make_person(groups=False)
    nested = f"CN=ops-admins-{secrets.token_hex(3)},{directory.groups_base}"
    helpdesk = f"helpdesk-{secrets.token_hex(3)}"
    for group in (nested, f"CN={helpdesk},{directory.groups_base}"):
        assert a.add(group, ["group"], {"sAMAccountName": group[3:].split(",")[0]}), a.result
    # Domain Admins <- ops-admins <- the person: nested, and no adminCount (AdminSDHolder has not run)
    assert a.modify(f"CN=Domain Admins,CN=Users,{directory.base}", {"member": [(ldap3.MODIFY_ADD, [nested])]})
    assert a.modify(nested, {"member": [(ldap3.MODIFY_ADD, [dn])]}), a.result
    assert a.modify(f"CN={helpdesk},{directory.groups_base}", {"member": [(ldap3.MODIFY_ADD, [configured_dn])]})
    a.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["adminCount"])
    assert not a.entries[0].adminCount.values
    connector = LdapConnector("ad", directory.settings(admin_groups=[helpdesk]))
    try:
        [account] = connector.discover(person)
        [other] = connector.discover(plain)
        [by_config] = connector.discover(configured)
        listed = {x.id: x.admin for x in _all_accounts(connector)}
    finally:
        connector.close()
    assert account.admin is True and by_config.admin is True and other.admin is False
    assert listed[account.id] is True and listed[other.id] is False  # the inventory sees the same
    # a policy with admins: true (the default) and no name pattern never plans it
    assert Protection.combine(None).reason(account) == "administrator account"
    assert Protection.combine(None).reason(other) is None


def _all_accounts(connector: LdapConnector):
    cursor = None
    while True:
        page = connector.list_accounts(cursor)
        yield from page.accounts
        if not page.cursor:
            return
        cursor = page.cursor


@AD_ONLY
def test_ad_a_second_disable_by_another_case_changes_nothing(directory: Directory, connector, person, target_state):
    [account] = connector.discover(person)
    first = connector.apply(Action(DISABLE, account, {"case": "case-first"}))
    assert first.changed is True
    state = target_state(account)
    again = connector.apply(Action(DISABLE, account, {"case": "case-second"}))
    assert again.changed is False and again.detail == "already disabled"
    assert target_state(account) == state  # the description still names the first case
    assert any("case-first" in d for d in state["description"])


@OPENLDAP_ONLY
def test_openldap_with_lockout_off_fails_the_disable_naming_the_setting_never_verified(directory: Directory):
    """pwdLockout: FALSE makes pwdAccountLockedTime do nothing: the account would still log in."""
    import secrets

    a = directory.admin
    policy = f"cn=nolockout-{secrets.token_hex(3)},ou=policies,{directory.base}"
    assert a.add(
        policy,
        ["device", "pwdPolicy"],
        {"cn": policy[3:].split(",")[0], "pwdAttribute": "userPassword", "pwdLockout": "FALSE"},
    ), a.result
    person, dn, password = directory.make_person(groups=False)
    assert a.modify(dn, {"pwdPolicySubentry": [(ldap3.MODIFY_REPLACE, [policy])]}), a.result
    connector = LdapConnector("openldap", directory.settings())
    try:
        action = _action(connector, person, DISABLE)
        with pytest.raises(PermanentError) as failed:
            connector.apply(action)
        assert "pwdLockout: FALSE" in str(failed.value) and policy in str(failed.value)
        assert directory.bind(dn, password) is not None  # nothing was written: the account still logs in
        # locked behind offboard's back under that policy: the read-back does not call it disabled
        assert a.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, ["000001010000Z"])]}), a.result
        assert directory.bind(dn, password) is not None, "slapd enforced the lock although pwdLockout is FALSE"
        verification = connector.verify(action)
        assert not verification.ok and "pwdLockout: FALSE" in verification.detail
    finally:
        connector.close()


@OPENLDAP_ONLY
def test_openldap_with_lockout_on_the_locked_account_cannot_bind(directory: Directory, connector):
    person, dn, password = directory.make_person(groups=False)
    action = _action(connector, person, DISABLE)
    assert connector.apply(action).changed is True
    assert connector.verify(action).ok
    assert directory.bind(dn, password) is None
