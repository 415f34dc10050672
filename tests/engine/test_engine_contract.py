"""The conformance kit itself, run against the test system, so the kit is known to catch things."""

from __future__ import annotations

import contextlib
import secrets

import pytest

from offboard import Person, Secret
from offboard.testing import ConnectorContract

from .. import _fakes

TOKEN = "contract-token-" + secrets.token_hex(8)  # made at run time, never a literal


@pytest.fixture
def system_db(tmp_path):
    path = tmp_path / "sys.db"
    _fakes.seed(path, [("alice", "alice@corp.example"), ("bob", "bob@corp.example")])
    return path


class TestTestSystemContract(ConnectorContract):
    @pytest.fixture
    def connector(self, system_db):
        return _fakes.TestSystem("sys", {"path": str(system_db), "token": Secret(TOKEN)})

    @pytest.fixture
    def list_connector(self, system_db):  # three accounts, one per page, and an empty last page
        _fakes.seed(system_db, [("carol", "carol@corp.example")])
        return _fakes.TestSystem("sys", {"path": str(system_db), "token": Secret(TOKEN), "page_size": 1})

    @pytest.fixture
    def person(self):
        return Person("alice@corp.example", "alice@corp.example")

    @pytest.fixture
    def target_state(self, connector):
        return lambda account: connector.state(account.id)

    @pytest.fixture
    def fault(self, system_db):
        @contextlib.contextmanager
        def inject(status, retry_after=None):
            _fakes.add_faults(system_db, (status, retry_after))
            yield

        return inject

    @pytest.fixture
    def secret_values(self):
        return [TOKEN]

    @pytest.fixture
    def lie(self, connector):
        @contextlib.contextmanager
        def lying():  # the system answers every write as done and keeps none
            honest = connector.settings
            connector.settings = honest.model_copy(update={"lie": True})
            try:
                yield
            finally:
                connector.settings = honest

        return lying


def test_the_kit_catches_a_connector_that_lies(system_db):
    """A connector whose writes do not stick must fail ``test_apply_then_verify``."""
    liar = _fakes.TestSystem("sys", {"path": str(system_db), "lie": True})
    kit = TestTestSystemContract()
    with pytest.raises(AssertionError, match="not verified after apply"):
        kit.test_apply_then_verify(liar, Person("alice@corp.example", "alice@corp.example"))
