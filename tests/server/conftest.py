"""Fixtures for the server tests: an app over a test company, with a clock the test moves."""

from __future__ import annotations

import pytest

from ._support import Clock, configure, new_secret, start, start_hooks, stop


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(make_company, monkeypatch, clock):
    """A started app (worker off: tests call ``server.intake.run_once()``) over 2 test systems."""
    company = make_company(systems=2)
    secret = new_secret()
    configure(company, secret, monkeypatch)
    srv = start(company, secret, clock)
    yield srv
    stop(srv)


@pytest.fixture
def hooks(make_company, monkeypatch):
    """A started app with the bundled BambooHR and HiBob sources configured."""
    srv = start_hooks(make_company, monkeypatch)
    yield srv
    stop(srv)
