"""Fixtures for the sandbox tests: one running sandbox shared by a module."""

from __future__ import annotations

import pytest

from offboard.sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(people=30, seed=7) as sb:
        yield sb


def _secret(ref: str) -> str:
    assert ref.startswith("file:"), ref
    with open(ref[5:]) as f:
        return f.read().strip()


@pytest.fixture(scope="session")
def secret():
    """Read a ``file:`` secret reference written by the sandbox."""
    return _secret
