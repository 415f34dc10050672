"""Fixtures for the audit-log tests: a populated, sealed log under OFFBOARD_HOME."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from offboard.audit import AuditLog, FileSigner
from offboard.cli._audit import audit

ORIGIN = "test.example/offboard/audit/v1"
TERMINATED = "2026-01-01T00:00:00.000Z"
PEOPLE = ("p-alice", "p-bob", "p-carol")


def write_case(
    log: AuditLog,
    person: str,
    case: str,
    systems=("entra", "github"),
    *,
    termination=TERMINATED,
    responded="2026-01-01T00:05:00.000Z",
    results=None,
    close=True,
    status="complete",
) -> None:
    """Log one case the way the engine does: opened, one action per planned account, closed."""
    results = results or {}
    plan = [
        {"system": s, "account": {"id": f"{person}-{s}", "name": f"{person}@{s}.example"}, "kind": "disable_account"}
        for s in systems
    ]
    log.append(
        "case_opened",
        {
            "case": case,
            "person": {"id": person, "employee_id": f"E-{person}"},
            "trigger": "cli",
            "policy": "default",
            "reason": "left the company",
            "termination_at": termination,
            "plan": plan,
            "dry_run": False,
        },
    )
    counts: dict[str, int] = {}
    for item in plan:
        result = results.get(item["system"], "verified")
        counts[result] = counts.get(result, 0) + 1
        log.append(
            "action",
            {
                "case": case,
                "person": {"id": person},
                "system": item["system"],
                "account": item["account"],
                "kind": "disable_account",
                "requested_at": "2026-01-01T00:04:59.000Z",
                "responded_at": responded,
                "result": result,
                "reference": f"ref-{case}-{item['system']}",
                "changed": True,
                "verification": {
                    "ok": result == "verified",
                    "observed": {"enabled": result != "verified"},
                    "detail": "",
                },
                "error": None if result == "verified" else "boom",
                "attempts": 1,
            },
        )
    if close:
        elapsed = datetime.fromisoformat(responded[:-1]) - datetime.fromisoformat(termination[:-1])
        log.append(
            "case_closed",
            {
                "case": case,
                "person": {"id": person},
                "status": status,
                "counts": counts,
                "termination_at": termination,
                "last_verified_at": responded,
                "elapsed_ms": int(elapsed.total_seconds() * 1000),
            },
        )


def open_log(directory: Path) -> AuditLog:
    """Open with the local key file, as the CLI does."""
    return AuditLog.open(directory, ORIGIN, signer=FileSigner(directory / "signing.key", ORIGIN))


@pytest.fixture
def audit_home(tmp_path, monkeypatch) -> Path:
    """OFFBOARD_HOME for this test."""
    home = tmp_path / "home"
    monkeypatch.setenv("OFFBOARD_HOME", str(home))
    return home


@pytest.fixture
def sealed_log(audit_home) -> Path:
    """Three people, one case each, a checkpoint after every case; returns the audit directory."""
    directory = audit_home / "audit"
    with open_log(directory) as log:
        for i, person in enumerate(PEOPLE):
            write_case(log, person, f"case-{i}")
            log.checkpoint()
    return directory


@pytest.fixture
def pinned_keys(sealed_log, tmp_path) -> Path:
    """An auditor's copy of the trust list, taken while the log was known good."""
    path = tmp_path / "pinned-keys.txt"
    shutil.copy(sealed_log / "trusted-keys.txt", path)
    return path


def run(*args: str):
    """Invoke ``offboard audit ARGS`` and return the click result."""
    return CliRunner().invoke(audit, list(args), catch_exceptions=False)


class AuditKit:
    """Helpers handed to tests through the ``audit_kit`` fixture."""

    origin = ORIGIN
    people = PEOPLE
    write_case = staticmethod(write_case)
    open_log = staticmethod(open_log)
    run = staticmethod(run)


@pytest.fixture
def audit_kit() -> type[AuditKit]:
    """Helpers: ``origin``, ``write_case``, ``open_log``, ``run``."""
    return AuditKit
