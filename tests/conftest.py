"""Shared fixtures: a data directory per test, and companies built from test systems."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from offboard.cli._main import cli

from . import _fakes
from ._smtp import smtp  # noqa: F401  (a fixture for every test module)

# The real directories, defined once for the whole run: a session fixture imported into two modules
# is two definitions, and a second Samba DC cannot bind the AD ports the first one holds.
from .connectors.conftest_ldap import directory, samba_dc, slapd_server  # noqa: F401, E402  (fixtures)

FAKES = Path(_fakes.__file__)

# pytest-xdist's workers export COLUMNS=80, and a rich Console fixes that width when it is built (the CLI's
# consoles are built when a command module is first imported): without it every run reads the terminal's
# width when it prints, so a test that passes COLUMNS to a command gets that width, however the tests run.
os.environ.pop("COLUMNS", None)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own data directory and no ambient configuration."""
    path = tmp_path / "home"
    monkeypatch.setenv("OFFBOARD_HOME", str(path))
    monkeypatch.delenv("OFFBOARD_CONFIG", raising=False)
    monkeypatch.delenv("OFFBOARD_DEBUG", raising=False)
    return path


@dataclass
class Company:
    """Test systems holding accounts for the same people, and a config file for them."""

    root: Path
    people: list[tuple[str, str]]
    systems: dict[str, Path] = field(default_factory=dict)
    config_path: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def write_config(self, **settings: Any) -> Path:
        connectors = {}
        for name, path in self.systems.items():
            connectors[name] = {"type": "testsys", "settings": {"path": str(path), **settings.get(name, {})}}
        data = {"plugins": [str(FAKES)], "connectors": connectors, **self.extra}
        self.config_path = self.root / "offboard.yaml"
        self.config_path.write_text(yaml.safe_dump(data))
        return self.config_path

    def changes(self, system: str) -> list[tuple[str, str]]:
        return _fakes.changes(self.systems[system])

    def state(self, system: str, login: str) -> dict[str, Any]:
        conn = _fakes.TestSystem(system, {"path": str(self.systems[system])})
        return conn.state(f"id-{login}")


@pytest.fixture
def make_company(tmp_path):
    def make(systems: int = 3, people: int = 4, admins: tuple[str, ...] = ()) -> Company:
        staff = [(f"user{i}", f"user{i}@corp.example") for i in range(people)]
        company = Company(tmp_path / "company", staff)
        company.root.mkdir(exist_ok=True)
        for s in range(systems):
            path = company.root / f"sys{s}.db"
            _fakes.seed(path, staff, admins)
            company.systems[f"sys{s}"] = path
        company.write_config()
        return company

    return make


PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_url():
    """A fresh schema in this machine's PostgreSQL, dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'create schema "{schema}"'))
    except sa.exc.OperationalError as exc:  # the server is part of this machine: fail loudly
        pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is not reachable: {exc}")
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'drop schema "{schema}" cascade'))
    admin.dispose()


@pytest.fixture
def run():
    """Invoke the CLI in-process; returns click's Result."""

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        runner = CliRunner()
        return runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return invoke
