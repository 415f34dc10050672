"""Undo says what it could not reverse: a scrambled password, against the real slapd and Samba AD."""

from __future__ import annotations

import pytest

from offboard.config._config import Config, ConnectorConfig
from offboard.engine._engine import Engine
from offboard.state._store import Store

pytestmark = [pytest.mark.ldap]


@pytest.mark.parametrize("directory", ["openldap", "ad"], indirect=True)
def test_undo_lists_a_scrambled_password_as_irreversible(directory, tmp_path):
    person, dn, password = directory.make_person(groups=False)
    settings = directory.settings(scramble_password=True, disabled_ou=None)
    config = Config(connectors={"dir": ConnectorConfig(type="ldap", settings=settings)})
    engine = Engine(config, Store.open(None, tmp_path), tmp_path)
    try:
        result = engine.revoke(person.email)
        assert result is not None and result.ok
        report = engine.undo(result.case_id, actor="tester")
    finally:
        engine.close()
    disable = next(label for label in report["restored"] if label.endswith("disable_account"))
    assert report["failed"] == []
    assert [x for x in report["irreversible"] if x.startswith(disable)] == [
        f"{disable}: the password was scrambled: the original cannot be restored; set a new one"
    ]
    # And it is true: the original password no longer opens the account.
    assert directory.bind(dn, password) is None
