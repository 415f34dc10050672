"""`offboard status CASE` reads back a case in every status the store can hold."""

from __future__ import annotations

import json

import pytest

from offboard.models import CaseStatus, Person
from offboard.state._store import Store, dumps, new_id, utcnow

#: Every status a case is stored in: the engine writes these, and `claim_close` writes `closing`.
STORED = ("running", "closing", "halted", "complete", "awaiting_tasks", "incomplete", "cancelled")
#: What `offboard status CASE` exits with (docs/checklists.md): 0 for a finished case, 3 otherwise.
EXIT = {"complete": 0, "cancelled": 0}


def test_the_case_statuses_are_the_stored_ones():
    assert {s.value for s in CaseStatus} == set(STORED)


def store_case(home, status: str) -> str:
    """A case written through the store, as the engine writes one, left in ``status``."""
    home.mkdir(parents=True, exist_ok=True)
    store = Store.open(None, home)
    person = Person(f"{status}@corp.example", email=f"{status}@corp.example")
    now, case_id = utcnow(), new_id()
    row = dict(
        id=case_id,
        person_id=person.id,
        person=dumps(person.to_dict()),
        status="running",
        trigger="cli",
        policy="default",
        reason="",
        detail="",
        created_at=now,
        updated_at=now,
        termination_at=now,
    )
    try:
        store.insert_case(row, [], [])
        if status == "closing":
            assert store.claim_close(case_id)  # how a case becomes closing: a worker wins the claim
        elif status != "running":
            store.update_case(case_id, status=status, closed_at=utcnow())
        assert store.case(case_id)["status"] == status
    finally:
        store.close()
    return case_id


@pytest.mark.parametrize("status", STORED)
def test_status_reads_back_a_case_in_every_stored_status(make_company, run, home, status):
    company = make_company(systems=1)
    case_id = store_case(home, status)
    result = run("--config", str(company.config_path), "status", case_id, "--json")
    assert result.exit_code == EXIT.get(status, 3), result.output
    assert json.loads(result.output)["status"] == status
    table = run("--config", str(company.config_path), "status", case_id)
    assert table.exit_code == EXIT.get(status, 3), table.output
    listing = run("--config", str(company.config_path), "status", "--json")
    assert listing.exit_code == 0 and [c["status"] for c in json.loads(listing.output)] == [status]
