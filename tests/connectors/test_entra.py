"""The Entra ID connector against the sandbox's Graph simulator, through msal and Graph over TLS."""

from __future__ import annotations

import pytest

from offboard import Action, ActionKind
from offboard.errors import PermissionDenied
from offboard_connectors.entra import EntraConnector

from ._support import SandboxContract

SYSTEM = "entra"
_VOLATILE = ("signInSessionsValidFromDateTime",)


class TestEntra(SandboxContract):
    connector_class = EntraConnector
    instance = "entra"

    @pytest.fixture
    def target_state(self, sandbox):
        sim = sandbox.sim(SYSTEM)

        def state(account):
            found = sim.account(account.id)
            # Graph keeps no order for licenses: compare them as sets.
            return {
                k: (sorted(v, key=repr) if isinstance(v, list) else v)
                for k, v in (found or {}).items()
                if k not in _VOLATILE
            }

        return state

    # -- beyond the contract ----------------------------------------------------

    def test_403_names_the_missing_permission(self, connector, sandbox):
        admin = next(i for i in sandbox.company.in_system(SYSTEM) if i.admin)
        account = connector.discover(admin.person or _person(admin.email))[0]
        with pytest.raises(PermissionDenied) as info:
            connector.apply(Action(ActionKind.DISABLE_ACCOUNT, account))
        assert "User.EnableDisableAccount.All" in info.value.permissions
        assert "User.EnableDisableAccount.All" in str(info.value)

    def test_group_removal_goes_through_ref_and_batch(self, connector, person, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(person)[0]
        sim.log.clear()
        receipt = connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        assert receipt.before["groups"], "the seeded person should be in a removable group"
        assert sim.log.entries(method="POST", path="/v1.0/$batch")
        inner = [e for e in sim.log.entries(method="DELETE") if "/members/" in e.path]
        assert inner and all(e.path.endswith("/$ref") for e in inner)
        assert sim.account(account.id) is not None, "the user object itself must survive"

    def _in_group(self, sim, account, name):
        group = next(g for g in sim.groups.values() if g["displayName"] == name)
        group["members"].add(account.id)
        return group

    def test_on_premises_synced_group_is_skipped_with_a_reason(self, connector, sandbox_people, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(next(sandbox_people).person)[0]
        synced = self._in_group(sim, account, "onprem-finance")
        sim.log.clear()
        action = Action(ActionKind.REMOVE_MEMBERSHIPS, account)
        receipt = connector.apply(action)
        assert synced["id"] not in {g["id"] for g in receipt.before["groups"]}
        assert "onprem-finance" in receipt.detail and "on-premises" in receipt.detail and "ldap" in receipt.detail
        assert not [e for e in sim.log.entries(method="DELETE") if synced["id"] in e.path], "no doomed attempt"
        verification = connector.verify(action, receipt)
        assert verification.ok and "onprem-finance" in verification.detail
        assert account.id in synced["members"]

    def test_role_assignable_group_needs_role_management(self, connector, sandbox_people, sandbox, sandbox_settings):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(next(sandbox_people).person)[0]
        group = self._in_group(sim, account, "role-helpdesk-admins")
        granted = sim.granted
        sim.granted = frozenset(granted - {"RoleManagement.ReadWrite.Directory"})
        lacking = EntraConnector("entra", sandbox_settings)  # a token issued without the permission
        try:
            result = lacking.check()
            receipt = lacking.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))
        finally:
            sim.granted = granted
            lacking.close()
        assert not result.ok and "RoleManagement.ReadWrite.Directory" in result.missing
        assert "RoleManagement.ReadWrite.Directory" in receipt.detail and account.id in group["members"]
        assert "RoleManagement.ReadWrite.Directory" in connector.permissions
        connector.apply(Action(ActionKind.REMOVE_MEMBERSHIPS, account))  # with the permission it goes
        assert account.id not in group["members"]

    def test_session_revocation_is_not_verified_for_guests(self, connector, sandbox_people, sandbox):
        sim = sandbox.sim(SYSTEM)
        account = connector.discover(next(sandbox_people).person)[0]
        sim.users[account.id]["userType"] = "Guest"
        action = Action(ActionKind.REVOKE_SESSIONS, account)
        receipt = connector.apply(action)
        verification = connector.verify(action, receipt)
        assert not verification.ok and "home tenant" in verification.detail
        assert "disable_account" in verification.detail and "home tenant" in receipt.detail

    def test_group_licenses_are_left_alone(self, connector, sandbox):
        ident = next(
            i
            for i in sandbox.company.in_system(SYSTEM)
            if i.licenses_from_group and i.person and not i.admin and not i.protected
        )
        account = connector.discover(ident.person)[0]
        receipt = connector.apply(Action(ActionKind.REMOVE_LICENSES, account))
        verification = connector.verify(Action(ActionKind.REMOVE_LICENSES, account), receipt)
        assert verification.ok and verification.observed["inherited"]

    def test_discover_by_employee_id(self, connector, sandbox_people):
        ident = next(i for i in sandbox_people if i.employee_id)
        from offboard import Person

        found = connector.discover(Person(id="someone", employee_id=ident.employee_id))
        assert [a.name.lower() for a in found] == [ident.email.lower()]

    def test_list_accounts_pages(self, sandbox_settings, sandbox):
        connector = EntraConnector("entra", {**sandbox_settings, "page_size": 7})
        seen, cursor = [], None
        while True:
            page = connector.list_accounts(cursor)
            seen += [a.id for a in page.accounts]
            cursor = page.cursor
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == len(sandbox.sim(SYSTEM).users)

    def test_wrong_secret_is_an_auth_error(self, sandbox_settings, tmp_path):
        bad = tmp_path / "secret"
        bad.write_text("not-the-secret")
        connector = EntraConnector("entra", {**sandbox_settings, "client_secret": f"file:{bad}"})
        result = connector.check()
        assert not result.ok and "invalid_client" in result.detail and "not-the-secret" not in result.detail


def _person(email):
    from offboard import Person

    return Person(id=email, email=email)


def test_certificate_credential_flow(sandbox, sandbox_settings, secret):
    """msal signs a client assertion with the certificate; the token endpoint checks it as Entra does."""
    sim = sandbox.sim(SYSTEM)
    cert = sim.certificate
    settings = {k: v for k, v in sandbox_settings.items() if k != "client_secret"}
    good = EntraConnector(
        "entra", {**settings, "certificate": secret(cert.private_key_pem), "certificate_thumbprint": cert.thumbprint}
    )
    try:
        assert good.check().ok
    finally:
        good.close()
    from offboard.sandbox._entra_cert import AppCertificate

    other = AppCertificate(sim.client_id)  # a certificate the app never registered
    bad = EntraConnector(
        "entra", {**settings, "certificate": secret(other.private_key_pem), "certificate_thumbprint": other.thumbprint}
    )
    try:
        result = bad.check()
    finally:
        bad.close()
    assert not result.ok and "not registered" in result.detail
