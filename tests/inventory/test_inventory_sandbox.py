"""Acceptance against the sandbox: 1,000 people, 37 contractors past their end date, 3 planted orphans."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from offboard.sandbox import Sandbox

from ._support import cases, events

SYSTEMS = ("entra", "google_workspace", "slack", "github", "scim", "okta", "aws")
WRITES = ("PATCH", "POST", "PUT", "DELETE")


def writes(entries) -> list:
    """Requests that may change something: GraphQL queries and AWS Get*/List* actions are POSTed but only read."""
    return [
        e
        for e in entries
        if e.method in WRITES
        and "token" not in e.path
        and "/oauth2/" not in e.path
        and not (e.path == "/graphql" and b"mutation" not in e.body)
        # AWS's query protocol POSTs every call: Get*/List* actions only read
        and not (e.path == "/" and (b"Action=Get" in e.body or b"Action=List" in e.body))
    ]


def disabled(sb: Sandbox, system: str, ident) -> bool:
    key = ident.github_login if system == "github" else ident.email
    state = sb.sim(system).account(key)
    if state is None:
        return True
    return {
        "entra": lambda s: not s["accountEnabled"],
        "google_workspace": lambda s: s["suspended"],
        "slack": lambda s: not s["active"],
        "github": lambda s: s["state"] in ("removed", "suspended"),
        "scim": lambda s: not s["active"],
        "okta": lambda s: s["status"] in ("SUSPENDED", "DEPROVISIONED"),
        "aws": lambda s: not s["active"],
    }[system](state)


@pytest.fixture
def company_config(tmp_path):
    with Sandbox(people=1000, seed=8, company_options={"contractors_past_end": 37}, knobs={"window_scale": 0.01}) as sb:
        config = sb.config()
        # GitHub org members carry no email: map people to logins explicitly (the connector's own `accounts:`).
        logins = {
            i.email: i.github_login for i in sb.company.identities if i.kind == "person" and "github" in i.systems
        }
        config["connectors"]["github"]["settings"]["accounts"] = logins
        config["limits"] = {"max_cases": 50, "max_percent": 25}
        for connector in config["connectors"].values():  # correctness here; rate limits are tested with the connectors
            connector["rate"] = 500
            connector["rates"] = {"*": 500}
        yield sb, config


def write(tmp_path, config) -> str:
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_sweep_revokes_exactly_the_37_and_orphans_are_exactly_the_planted(company_config, tmp_path, run, home):
    sb, config = company_config
    path = write(tmp_path, config)
    result = run("--config", path, "inventory", "sync", "--json")
    assert result.exit_code == 0, result.output
    assert {s["system"]: s["status"] for s in json.loads(result.output)["systems"]} == {s: "ok" for s in SYSTEMS}

    result = run("--config", path, "inventory", "orphans", "--json")
    assert result.exit_code == 0, result.output
    listed = {(r["system"], r["name"].lower()) for r in json.loads(result.output)}
    planted = set()
    for ident in sb.company.orphans:
        for system in ident.systems:
            planted.add((system, ident.github_login if system == "github" else ident.email))
    assert listed == planted

    leavers = sb.company.contractors_past_end
    assert len(leavers) == 37
    # AWS's disable deletes the IAM console password, which offboard cannot give back: the sweep halts on it
    halted = run("--config", path, "sweep", "--json")
    assert halted.exit_code == 3 and json.loads(halted.stdout)["cases"] == []
    assert any("in aws, which offboard cannot undo" in r for r in json.loads(halted.stdout)["reasons"])
    result = run("--config", path, "sweep", "--allow-destructive", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert sorted(c["person"] for c in body["cases"]) == sorted(p.id for p in leavers)
    assert {c["status"] for c in body["cases"]} == {"complete"}
    leaving = {p.id for p in leavers}
    for ident in sb.company.identities:
        for system in ident.systems:
            if ident.kind == "person" and ident.person.id in leaving:
                assert disabled(sb, system, ident), (system, ident.email)
            else:
                assert not disabled(sb, system, ident), (system, ident.email)

    before = [len(sb.sim(s).log.entries()) for s in SYSTEMS]
    again = run("--config", path, "sweep", "--allow-destructive", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["cases"] == [] and len(cases(home)) == 37
    after = sb.sim("entra").log.entries()[before[0] :]
    assert not [e for e in after if e.method in WRITES and "/oauth2/" not in e.path], "a second sweep must not write"


def test_a_corrupted_export_halts_the_sandbox_sweep_with_no_action(company_config, tmp_path, run, home):
    sb, config = company_config
    people = json.loads(open(config["people"][0]["settings"]["path"]).read())
    # A date means the end of that day in the person's zone: two days ago has ended everywhere (UTC-12 included),
    # whatever the hour this runs at; yesterday has not yet ended in the Americas before 08:00 UTC.
    ended = (datetime.now(UTC).date() - timedelta(days=2)).isoformat()
    for row in people[:600]:  # the export claims 60% of the company left
        row["end_date"] = ended
    corrupt = tmp_path / "people.json"
    corrupt.write_text(json.dumps(people))
    config = {**config, "people": [{"type": "hr_export", "settings": {"path": str(corrupt)}}]}
    path = write(tmp_path, config)
    before = {s: len(sb.sim(s).log.entries()) for s in SYSTEMS}
    result = run("--config", path, "sweep")
    assert result.exit_code == 3
    assert "sweep halted before any action" in result.output and "limits.max_cases is 50" in result.output
    for s in SYSTEMS:
        new = sb.sim(s).log.entries()[before[s] :]
        assert writes(new) == [], s
    assert cases(home) == []
    halted = events(home, "sweep_halted")
    assert len(halted) == 1 and halted[0]["payload"]["cases"] >= 600
