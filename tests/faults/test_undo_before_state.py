"""Undo restores the true before-state after the directory applied a disable whose reply was lost.

A proxy between offboard and the real slapd forwards the lock, lets slapd apply it, then cuts the
connection before the reply and refuses connections: the revoke's disable fails. The directory comes
back, a second revoke completes ("already locked"), and undo of either case must unlock the account
and give back its bind: the before-state kept is the one read before offboard's first write.
"""

from __future__ import annotations

import pytest

from offboard.config._config import Config, ConnectorConfig, Limits
from offboard.engine._engine import Engine
from offboard.models import Account
from offboard.state._store import Store

from ..connectors.conftest_ldap import Directory, slapd_server  # noqa: F401  (fixtures)
from ._proxy import CuttingProxy

pytestmark = [pytest.mark.ldap]


@pytest.fixture
def slapd(slapd_server):  # noqa: F811
    return Directory("openldap", slapd_server)


def _engine(slapd: Directory, proxy: CuttingProxy, tmp_path) -> Engine:
    settings = slapd.settings(url=proxy.url, allow_plain=True, ca_file=None)
    limits = Limits(max_attempts=2, min_retry_wait=0.05, max_retry_wait=0.1)
    config = Config(connectors={"dir": ConnectorConfig(type="ldap", settings=settings)}, limits=limits)
    return Engine(config, Store.open(None, tmp_path), tmp_path)


def _account(engine: Engine, case_id: str) -> Account:
    import json

    row = next(r for r in engine.store.actions(case_id) if r["kind"] == "disable_account")
    return Account.from_dict(json.loads(row["account"]))


@pytest.mark.parametrize("undo_first_case", [False, True], ids=["undo-rerun", "undo-cut-case"])
def test_undo_after_a_disable_whose_reply_was_lost_restores_the_original(slapd, tmp_path, undo_first_case):
    person, dn, password = slapd.make_person(groups=False)
    host, port = slapd.server.host, slapd.server.port
    proxy = CuttingProxy(host, port, marker=b"pwdAccountLockedTime")
    engine = _engine(slapd, proxy, tmp_path)
    try:
        first = engine.revoke(person.email)
        assert first is not None and not first.ok  # the lock was applied, its reply lost, the server gone
        assert proxy.cuts == 1
        account = _account(engine, first.case_id)
        assert slapd.state(account)["locked"], "the cut write must have landed on slapd"
        assert slapd.bind(dn, password) is None

        proxy.down = False  # the directory is back
        second = engine.revoke(person.email)
        assert second is not None and second.ok

        report = engine.undo(first.case_id if undo_first_case else second.case_id, actor="tester")
    finally:
        engine.close()
        proxy.close()
    assert report["failed"] == []
    assert slapd.state(account)["locked"] == []  # pwdAccountLockedTime is gone again (it stayed, before the fix)
    assert slapd.bind(dn, password) is not None  # and the person can bind
    assert any(label.endswith("disable_account") for label in report["original"])  # and undo says from what
