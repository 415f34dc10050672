"""The state store on SQLite and on the PostgreSQL server of this machine."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from offboard.config._config import Config, ConnectorConfig
from offboard.engine._engine import Engine
from offboard.state._store import Store
from offboard.state.schema import metadata

from .. import _fakes


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """The same tests on SQLite and on this machine's PostgreSQL (a fresh schema)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


def test_migrations_build_exactly_the_declared_schema(store_url, tmp_path):
    store = Store(store_url)
    store.migrate()
    store.migrate()  # idempotent
    with store._db.connect() as conn:
        ours = lambda name, type_, parent: not (name or "").startswith("procrastinate")  # noqa: E731
        diff = compare_metadata(MigrationContext.configure(conn, opts={"include_name": ours}), metadata)
    store.close()
    assert diff == []


def test_a_case_runs_on_either_store(store_url, make_company, tmp_path):
    company = make_company(systems=2)
    from offboard import plugins

    pm = plugins.get_plugin_manager()
    if not pm.is_registered(_fakes):
        pm.register(_fakes)
    config = Config(
        store=store_url,
        connectors={s: ConnectorConfig(type="testsys", settings={"path": str(p)}) for s, p in company.systems.items()},
    )
    engine = Engine.open(config, tmp_path)
    result = engine.revoke("user1@corp.example")
    assert result.ok
    assert engine.store.case(result.case_id)["status"] == "complete"
    assert [e["type"] for e in engine.store.events(result.case_id)][-1] == "case_closed"
    assert engine.store.case_by_prefix(result.case_id[-8:])["id"] == result.case_id
    engine.close()
