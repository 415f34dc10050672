"""Helpers for the auditor-page tests: a company with complete and incomplete cases and an auditor token."""

from __future__ import annotations

import secrets
from typing import Any

from .. import _fakes
from ._support import Clock, Server, configure, new_secret, open_engine, start

TOKEN_ENV = "OFFBOARD_TEST_AUDITOR_TOKEN"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def configure_auditor(make_company: Any, monkeypatch: Any) -> tuple[Any, str]:
    """A company of two test systems and four people, configured with a webhook secret and an auditor token."""
    company = make_company(systems=2, people=4)
    token = secrets.token_urlsafe(32)
    monkeypatch.setenv(TOKEN_ENV, token)
    configure(company, new_secret(), monkeypatch, server={"auditor_token": f"env:{TOKEN_ENV}"})
    return company, token


def run_cases(engine: Any, company: Any) -> None:
    """user0 and user1 complete; user2 incomplete (sys1 rejects the credentials once its accounts are found)."""
    engine.revoke("user0@corp.example")
    engine.revoke("user1@corp.example")
    case = engine.open_case(engine.plan("user2@corp.example"))
    _fakes.add_faults(
        company.systems["sys1"], (401, None)
    )  # credentials rejected, never retried: the case ends incomplete
    engine.run_cases([case])
    engine.wait_sealed()  # the pages show what a checkpoint covers: wait for the background seal, never on timing


def start_auditor(make_company: Any, monkeypatch: Any, clock: Clock) -> tuple[Server, str]:
    """A started app (TestClient) over that company, its cases run; returns (server, token)."""
    company, token = configure_auditor(make_company, monkeypatch)
    srv = start(company, "unused", clock)
    run_cases(srv.engine, company)
    return srv, token


__all__ = ["TOKEN_ENV", "bearer", "configure_auditor", "open_engine", "run_cases", "start_auditor"]
