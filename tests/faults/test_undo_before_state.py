"""Undo restores the true before-state after the directory lost a disable's request or its reply.

A proxy between offboard and the real slapd or Samba AD DC cuts the connection of the disable's
write, either before the request reaches the server or after the server applied it but before the
reply, and then refuses connections: the revoke's disable fails. The directory comes back, the owed
disable is retried or a second revoke completes, and undo of either case must give the account back exactly its original lock
attributes and its bind: the before-state kept is the one read before offboard's first write.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from offboard.audit._verify import verify_log
from offboard.config._config import Config, ConnectorConfig, Limits
from offboard.engine._engine import Engine
from offboard.models import Account

from ._proxy import CuttingProxy

pytestmark = [pytest.mark.ldap]


def _proxy(directory: Any, after_apply: bool) -> CuttingProxy:
    server = directory.server
    if directory.ad:  # Samba refuses simple binds in the clear: the proxy terminates TLS
        cert, key = server.ca.issue("proxy", ["localhost"], ["127.0.0.1"])
        return CuttingProxy(
            server.host, 636, b"userAccountControl", after_apply=after_apply, tls=(cert, key, server.ca.path)
        )
    return CuttingProxy(server.host, server.port, b"pwdAccountLockedTime", after_apply=after_apply)


def _engine(directory: Any, proxy: CuttingProxy, tmp_path) -> Engine:
    if directory.ad:
        settings = directory.settings(url=proxy.url, disabled_ou=None)
    else:
        settings = directory.settings(url=proxy.url, allow_plain=True, ca_file=None)
    limits = Limits(max_attempts=2, min_retry_wait=0.05, max_retry_wait=0.1)
    config = Config(connectors={"dir": ConnectorConfig(type="ldap", settings=settings)}, limits=limits)
    return Engine.open(config, tmp_path)


def _account(engine: Engine, case_id: str) -> Account:
    row = next(r for r in engine.store.actions(case_id) if r["kind"] == "disable_account")
    return Account.from_dict(json.loads(row["account"]))


def _lock(directory: Any, account: Account) -> dict[str, Any]:
    """The attributes a disable writes, as an administrator reads them."""
    state = directory.state(account)
    if directory.ad:
        return {k: state[k] for k in ("dn", "userAccountControl", "accountExpires", "description")}
    return {"dn": state["dn"], "locked": state["locked"]}


@pytest.mark.parametrize("directory", ["openldap", "ad"], indirect=True)
@pytest.mark.parametrize("after_apply", [True, False], ids=["cut-after-apply", "cut-before-request"])
@pytest.mark.parametrize("rerun", ["revoke-undo-second", "revoke-undo-cut-case", "retry-owed"])
def test_undo_after_a_cut_disable_restores_the_original(directory, tmp_path, after_apply, rerun):
    person, dn, password = directory.make_person(groups=True)
    proxy = _proxy(directory, after_apply)
    engine = _engine(directory, proxy, tmp_path)
    try:
        account = engine.gather(person)[0][0]
        original = _lock(directory, account)
        groups = directory.state(account)["groups"]
        assert groups
        first = engine.revoke(person.email)
        assert first is not None and not first.ok  # the write's connection was cut, the server gone
        assert proxy.cuts == 1
        assert (directory.bind(dn, password) is None) == after_apply  # the cut write landed, or never arrived

        proxy.down = False  # the directory is back
        if rerun == "retry-owed":  # the same case, its owed disable retried (what resume and the server do)
            results = engine.retry_owed(case_id=first.case_id, force=True)
            assert [r.ok for r in results] == [True]
            undo = first.case_id
        else:  # a second revoke: a new case that finds the account already disabled
            second = engine.revoke(person.email)
            assert second is not None and second.ok
            undo = second.case_id if rerun == "revoke-undo-second" else first.case_id
        assert directory.bind(dn, password) is None

        report = engine.undo(undo, actor="tester")
        engine.wait_sealed()
    finally:
        engine.close()
        proxy.close()
    assert report["failed"] == []
    # Exactly the original lock attributes (pwdAccountLockedTime / userAccountControl stayed, before the fix) ...
    assert _lock(directory, account) == original
    assert directory.bind(dn, password) is not None  # ... and the person can bind again
    if rerun != "revoke-undo-cut-case":  # the cut case never got to remove the memberships: the second did
        assert directory.state(account)["groups"] == groups
    restored = [label for label in report["restored"] if label.endswith("disable_account")]
    assert restored, report
    # The audit log agrees. Undoing the second case leaves the first one incomplete: a finding, as it should be.
    verified = verify_log(tmp_path / "audit")
    assert not verified.of("integrity"), verified.as_dict()["problems"]
    if rerun != "revoke-undo-second":
        assert verified.exit_code == 0, verified.as_dict()["problems"]


@pytest.mark.parametrize("directory", ["openldap"], indirect=True)
def test_undo_reads_the_account_back_and_reports_a_restore_that_did_not_land(directory, tmp_path):
    """The directory answers the unlock "success" but never applies it: undo must not say restored."""
    person, dn, password = directory.make_person(groups=False)
    proxy = _proxy(directory, after_apply=True)
    proxy.armed = False  # the revoke goes through untouched
    engine = _engine(directory, proxy, tmp_path)
    try:
        result = engine.revoke(person.email)
        assert result is not None and result.ok
        proxy.lie = True
        report = engine.undo(result.case_id, actor="tester")
        status = engine.store.case(result.case_id)["status"]
    finally:
        engine.close()
        proxy.close()
    assert directory.bind(dn, password) is None  # still locked: the unlock never reached slapd
    disable = [label for label in report["failed"] if "disable_account" in label]
    assert len(disable) == 1 and disable[0].endswith("still not as before: pwdAccountLockedTime"), report
    assert not any(label.endswith("disable_account") for label in report["restored"])
    assert status != "cancelled"
