"""One account set, whatever the path: over the seeded sandbox company, with its configuration as
``offboard sandbox up`` writes it (GitHub members named by SAML, outside collaborators by the admin's
``accounts:`` mapping), ``plan`` and the inventory agree."""

from __future__ import annotations

import json

import pytest
import yaml

from offboard.sandbox import Sandbox

SYSTEMS = ("entra", "google_workspace", "slack", "github", "scim", "okta", "aws")


def holds_access(sb: Sandbox, system: str, ident) -> bool:
    """Read the simulator itself, not through offboard: does this identity still hold access there?"""
    key = ident.github_login if system == "github" else ident.email
    state = sb.sim(system).account(key)
    if state is None:
        return False
    return {
        "entra": lambda s: s["accountEnabled"],
        "google_workspace": lambda s: not s["suspended"],
        "slack": lambda s: s["active"],
        # an org member (active, or invited back: pending) or an outside collaborator still reaches the org's code
        "github": lambda s: s["state"] in ("active", "pending", "collaborator"),
        "scim": lambda s: s["active"],
        "okta": lambda s: s["active"],  # status ACTIVE (SUSPENDED and DEPROVISIONED users cannot sign in)
        "aws": lambda s: s["active"],  # an active access key or a console password
    }[system](state)


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    # seed 1: four contractors past their end date, two of them on GitHub (one an outside collaborator)
    with Sandbox(people=50, seed=1, company_options={"contractors_past_end": 4}, knobs={"window_scale": 0.01}) as sb:
        config = sb.config()
        config["limits"] = {"max_cases": 50, "max_percent": 50}
        for connector in config["connectors"].values():
            connector["rate"] = 500
            connector["rates"] = {"*": 500}
        path = tmp_path_factory.mktemp("correlate") / "offboard.yaml"
        path.write_text(yaml.safe_dump(config))
        yield sb, str(path)


@pytest.fixture
def synced(company, run, home):
    sb, path = company
    result = run("--config", path, "inventory", "sync", "--json")
    assert result.exit_code == 0, result.output
    return sb, path, {s["system"]: s for s in json.loads(result.output)["systems"]}


def test_plan_and_inventory_see_the_same_accounts_for_every_person(synced, run):
    sb, path, systems = synced
    github = [i for i in sb.company.in_system("github") if i.kind == "person"]
    invited = [i for i in sb.sim("github").invitations.values() if not i["login"]]  # email invitations: people too
    assert invited  # the sandbox invites some contractors' sub-addresses
    # was 0: logins carry no email without the SAML identity
    assert systems["github"]["matched"] == len(github) + len(invited)
    for person in sb.company.people:
        planned = run("--config", path, "plan", person.id, "--json")
        assert planned.exit_code in (0, 3), planned.output
        body = json.loads(planned.output)
        assert body["errors"] == {}, body["errors"]
        found = {(a["system"], a["account"].lower()) for a in body["actions"] + body["protected"]}
        shown = run("--config", path, "inventory", "show", person.id, "--json")
        assert shown.exit_code == 0, shown.output
        listed = {(r["system"], r["name"].lower()) for r in json.loads(shown.output) if r["active"]}
        assert found == listed, person.id
        assert listed, person.id


def test_orphans_are_exactly_the_planted_ones(synced, run):
    sb, path, _ = synced
    result = run("--config", path, "inventory", "orphans", "--json")
    assert result.exit_code == 0, result.output
    listed = {(r["system"], r["name"].lower()) for r in json.loads(result.output)}
    planted = {
        (system, ident.github_login if system == "github" else ident.email)
        for ident in sb.company.orphans
        for system in ident.systems
    }
    assert any(system == "github" for system, _ in planted)
    assert listed == planted


def test_a_sweep_names_the_systems_it_cannot_correlate_for_a_leaver(company, run, home, tmp_path):
    """Without SAML, GitHub knows members' verified emails but nothing about outside collaborators (and without
    an admin's mapping of their logins, nothing names them): the sweep plans the members' GitHub accounts and
    says, on the plan, that GitHub is unknown for everyone else."""
    sb, mapped = company
    config = yaml.safe_load(open(mapped))
    assert config["connectors"]["github"]["settings"].pop("accounts")  # the sandbox maps its outside collaborators
    path = str(tmp_path / "unmapped.yaml")
    open(path, "w").write(yaml.safe_dump(config))
    sim = sb.sim("github")
    sim.saml_level = "none"
    try:
        dry = run("--config", path, "sweep", "--dry-run", "--json")
        text = run("--config", path, "sweep", "--dry-run")
    finally:
        sim.saml_level = "org"
    assert dry.exit_code == 0, dry.output
    body = json.loads(dry.output)
    plans = {p["person"]["id"]: p for p in body["plans"]}
    flagged = {(u["person"], u["system"]) for u in body["uncorrelated"]}
    leaving = [i for i in sb.company.identities if i.person is not None and i.person in sb.company.contractors_past_end]
    collaborator = next(i for i in leaving if i.outside_collaborator)
    member = next(i for i in leaving if "github" in i.systems and not i.outside_collaborator)
    assert "github" in {a["system"] for a in plans[member.person.id]["actions"]}
    assert (member.person.id, "github") not in flagged and plans[member.person.id]["uncorrelated"] == {}
    assert "github" not in {a["system"] for a in plans[collaborator.person.id]["actions"]}
    assert "no email to correlate by" in plans[collaborator.person.id]["uncorrelated"]["github"]
    assert flagged == {(i.person.id, "github") for i in leaving if i is not member}
    assert f"{collaborator.person.id}: not correlated in github" in " ".join(text.output.split())
    assert "could not be correlated in github" in body["message"]


def test_after_a_sweep_no_swept_person_holds_access_in_any_simulator(synced, run):
    sb, path, _ = synced
    leaving = {p.id for p in sb.company.contractors_past_end}
    swept = [i for i in sb.company.identities if i.person is not None and i.person.id in leaving]
    on_github = [i for i in swept if "github" in i.systems]
    assert len(swept) == 4 and {i.outside_collaborator for i in on_github} == {True, False}

    dry = run("--config", path, "sweep", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = {p["person"]["id"]: {a["system"] for a in p["actions"]} for p in json.loads(dry.output)["plans"]}
    assert json.loads(dry.output)["uncorrelated"] == []  # every listed account is tied to someone, or protected
    for ident in on_github:
        assert "github" in planned[ident.person.id], ident.person.id

    # --allow-destructive: AWS's disable deletes the IAM console password, which offboard cannot give back
    result = run("--config", path, "sweep", "--allow-destructive", "--json")
    assert result.exit_code == 0, result.output
    assert {c["status"] for c in json.loads(result.output)["cases"]} == {"complete"}
    for ident in swept:
        for system in ident.systems:
            assert not holds_access(sb, system, ident), (system, ident.email)
    # and nobody else lost anything
    for ident in sb.company.identities:
        if ident not in swept:
            for system in ident.systems:
                assert holds_access(sb, system, ident), (system, ident.email)
    again = run("--config", path, "sweep", "--dry-run", "--json")
    assert json.loads(again.output)["plans"] == []
