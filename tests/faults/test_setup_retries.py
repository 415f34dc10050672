"""Connector set-up under a throttling vendor: retried under the retry policy, never aborting `resume`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from offboard.config._config import load_config
from offboard.engine._engine import Engine
from offboard.sandbox import Sandbox
from offboard.state._store import Store


def _running_case(config: Path, home: Path, person: str) -> str:
    """A case opened and left running with every action pending, as a crash right after opening leaves it."""
    home.mkdir(parents=True, exist_ok=True)
    engine = Engine.open(load_config(config), home)
    try:
        return engine.open_case(engine.plan(person))
    finally:
        engine.close()


@pytest.mark.parametrize(("status", "retry_after"), [(429, 0.3), (503, None)])
def test_resume_completes_while_entra_refuses_the_first_discovery_and_token_requests(
    tmp_path, home, run, status, retry_after
):
    with Sandbox(people=12, seed=5, systems=("entra",)) as sandbox:
        config = sandbox.write_config(tmp_path / "offboard.yaml")
        person = next(
            i.person
            for i in sandbox.company.in_system("entra")
            if i.kind == "person" and i.person and i.person.active and not i.protected and not i.admin
        )
        case_id = _running_case(config, home, person.email)
        entra = sandbox.sim("entra")
        seen = entra.log.total
        with entra.force(status, retry_after=retry_after, count=4):
            result = run("--config", str(config), "resume", "--json")
        assert result.exit_code == 0, result.output
        [case] = json.loads(result.stdout)
        assert case["case"] == case_id and case["status"] == "complete"
        requests = entra.log.entries()[seen:]
        forced = [e for e in requests if e.fault == "forced"]
        assert len(forced) == 4
        # The first answers refused were the set-up's own: MSAL's authority discovery, then the token.
        assert forced[0].path.endswith("/.well-known/openid-configuration")
        assert all(e.status == status for e in forced)
        assert any(e.path.endswith("/oauth2/v2.0/token") and e.status == 200 for e in requests)
        assert sandbox.account("entra", person.email)["accountEnabled"] is False


def test_a_set_up_that_keeps_failing_fails_that_systems_actions_and_the_rest_of_resume_goes_on(tmp_path, home, run):
    with Sandbox(people=12, seed=5, systems=("entra", "google_workspace")) as sandbox:
        settings = dict(sandbox.config())
        settings["limits"] = {"action_budget": 3}
        config = tmp_path / "offboard.yaml"
        config.write_text(yaml.safe_dump(settings))
        person = next(
            i.person
            for i in sandbox.company.in_system("entra")
            if i.kind == "person"
            and i.person
            and i.person.active
            and not i.protected
            and not i.admin
            and "google_workspace" in i.systems
        )
        case_id = _running_case(config, home, person.email)
        with sandbox.sim("entra").force(429, retry_after=1):  # throttled for as long as resume runs
            result = run("--config", str(config), "resume", "--json")
        assert result.exit_code == 3, result.output  # incomplete: not a usage error, nothing aborted
        [case] = json.loads(result.stdout)
        assert case["case"] == case_id and case["status"] == "incomplete"
        actions = Store.open(None, home).actions(case_id)
        entra = [a for a in actions if a["system"] == "entra"]
        google = [a for a in actions if a["system"] == "google_workspace"]
        assert entra and all(a["status"] == "failed" for a in entra)
        assert all("connector set-up failed: RateLimited" in a["error"] for a in entra)
        assert all("limits.action_budget" in a["error"] for a in entra)
        assert google and all(a["status"] == "verified" for a in google)
        assert sandbox.account("entra", person.email)["accountEnabled"] is True
