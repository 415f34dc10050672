"""BambooHR and HiBob webhooks through their adapters: each sender's own signature scheme."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from ._support import BAMBOO_KEY, BOB_KEY, bamboo_headers, bob_headers


def bamboo(srv, payload, *, key=BAMBOO_KEY, stamp=None, drop=()):
    body = json.dumps(payload).encode()
    headers = {
        "content-type": "application/json",
        **bamboo_headers(body, stamp or str(int(srv.clock().timestamp())), key),
    }
    for name in drop:
        del headers[name]
    return srv.client.post("/v1/hooks/bamboohr", content=body, headers=headers)


def employee(email="user1@corp.example", status="Inactive", changed=("Status",), **fields):
    return {
        "employees": [
            {
                "id": "41",
                "action": "Updated",
                "timestamp": "2026-11-25T10:00:00+00:00",
                "changedFields": list(changed),
                "fields": {"Work Email": email, "Status": status, **fields},
            }
        ]
    }


def test_bamboohr_termination_opens_a_case(hooks):
    response = bamboo(hooks, employee())
    assert response.status_code == 202, response.text
    hooks.intake.run_once()
    (case,) = hooks.cases()
    assert case["person_id"] == "user1@corp.example" and case["source_event"].startswith("bamboohr:")
    assert bamboo(hooks, employee()).status_code == 200  # BambooHR retried: nothing new


def test_bamboohr_future_termination_date_is_scheduled_and_a_reversal_cancels_it(hooks):
    day = (hooks.clock() + timedelta(days=3)).date().isoformat()
    assert bamboo(hooks, employee(**{"Termination Date": {"value": day}})).status_code == 202
    hooks.intake.run_once()
    assert [e["status"] for e in hooks.events()] == ["scheduled"]
    assert bamboo(hooks, employee(status="Active", **{"Termination Date": day})).status_code == 202
    hooks.intake.run_once()
    assert [e["status"] for e in hooks.events()] == ["cancelled", "done"]
    hooks.clock.advance(days=5)
    hooks.intake.run_once()
    assert hooks.cases() == []


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"key": "another-key-entirely-000"}, 401, "bad_signature"),
        ({"stamp_shift": -600}, 401, "timestamp_out_of_window"),
        ({"drop": ("X-BambooHR-Signature",)}, 400, "missing_headers"),
        ({"drop": ("X-BambooHR-Timestamp",)}, 400, "missing_headers"),
    ],
)
def test_bamboohr_refusals(hooks, change, status, code):
    stamp = str(int(hooks.clock().timestamp()) + change.pop("stamp_shift", 0))
    response = bamboo(hooks, employee(), stamp=stamp, **change)
    assert response.status_code == status and response.json()["error"] == code
    hooks.intake.run_once()
    assert hooks.events() == [] and hooks.cases() == []


def test_bamboohr_event_based_payloads_carry_no_values_and_are_acknowledged(hooks):
    payload = {
        "type": "employee.updated",
        "timestamp": "2026-01-31T18:42:00+0000",
        "data": {"companyId": "1", "employeeId": "41", "changedFields": ["status"]},
    }
    response = bamboo(hooks, payload)
    assert response.status_code == 200 and response.json()["status"] == "ignored"


def bob(srv, payload, key=BOB_KEY, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    return srv.client.post(
        "/v1/hooks/hibob", content=body, headers={"content-type": "application/json", **bob_headers(body, key)}
    )


LEFT = {
    "companyId": 640000,
    "type": "employee.left",
    "triggeredBy": "system",
    "triggeredAt": "2026-11-25T00:00:00.000Z",
    "version": "v2",
    "data": {"employeeId": "E0001"},
}


def test_hibob_employee_left_opens_a_case_by_employee_id(hooks):
    assert bob(hooks, LEFT).status_code == 202
    assert bob(hooks, LEFT).status_code == 200  # redelivered
    hooks.intake.run_once()
    (case,) = hooks.cases()
    assert case["person_id"] == "E0001" and case["status"] == "complete"
    assert hooks.company.state("sys0", "user1")["enabled"] is False


def test_hibob_ping_is_answered_and_other_events_are_ignored(hooks):
    ping = hooks.client.post("/v1/hooks/hibob", content=b"Ping test", headers={"content-type": "text/plain"})
    assert ping.status_code == 200
    assert bob(hooks, {**LEFT, "type": "employee.updated"}).json()["status"] == "ignored"
    assert hooks.events() == []


def test_hibob_bad_signature(hooks):
    response = bob(hooks, LEFT, key="not-the-secret-at-all")
    assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    missing = hooks.client.post(
        "/v1/hooks/hibob", content=json.dumps(LEFT).encode(), headers={"content-type": "application/json"}
    )
    assert missing.status_code == 400 and "Bob-Signature" in missing.json()["message"]
    assert hooks.events() == []


def test_an_unconfigured_source_is_404(hooks):
    response = hooks.client.post("/v1/hooks/workday", content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 404 and "workday" in response.json()["message"]
    assert "bamboohr" not in response.json()["message"]  # the configured sources are nobody else's business
