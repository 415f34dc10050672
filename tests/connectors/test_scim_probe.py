"""``offboard connectors probe``: flags an application that answers active:false and changes nothing, passes
faithful ones (the sandbox's SCIM simulator and scim2-server from PyPI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import SCIM2_TOKEN

SYSTEM = "scim"


def _config(tmp_path: Path, settings: dict) -> Path:
    path = tmp_path / "offboard.yaml"
    path.write_text(yaml.safe_dump({"connectors": {"app": {"type": "scim", "settings": settings}}}))
    return path


@pytest.fixture
def sim(sandbox):
    simulator = sandbox.sim(SYSTEM)
    yield simulator
    simulator.use_profile("generic")


@pytest.fixture
def sandbox_config(tmp_path, sandbox_settings):
    return _config(tmp_path, sandbox_settings)


def _probe(run, config: Path, *args: str) -> tuple[int, dict]:
    result = run("--config", str(config), "connectors", "probe", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def _probe_users(sim) -> list[dict]:
    return [a for a in sim.accounts() if a["userName"].startswith("offboard-probe-")]


def test_probe_flags_an_app_that_ignores_active_false(run, sim, sandbox_config, sandbox_secrets):
    sim.use_profile("ignores-active")
    before = len(_probe_users(sim))
    code, report = _probe(run, sandbox_config, "app")
    assert code == 3
    assert report["verdict"] == "ineffective" and report["created"]
    assert "accepted the deactivation" in report["detail"] and "do not trust disable_account" in report["detail"]
    assert [c["ok"] for c in report["checks"]] == [False, False]  # GET /Users/{id} and the userName search
    assert report["cleanup"].startswith("deleted test account") and len(_probe_users(sim)) == before
    assert not any(secret in json.dumps(report) for secret in sandbox_secrets)


def test_probe_passes_a_faithful_app_and_records_itself(run, sim, sandbox_config, home):
    code, report = _probe(run, sandbox_config, "app")
    assert code == 0, report
    assert report["verdict"] == "effective" and all(c["ok"] for c in report["checks"])
    assert not _probe_users(sim)  # the created test user is gone again
    from offboard.state._store import Store

    store = Store(f"sqlite:///{home / 'offboard.db'}")
    try:
        probes = [json.loads(e["payload"]) for e in store.events() if e["type"] == "probe"]
    finally:
        store.close()
    assert probes[-1]["verdict"] == "effective" and probes[-1]["system"] == "app"


def test_probe_with_a_named_test_user_re_enables_it(run, sim, sandbox_config, sandbox_people):
    person = next(sandbox_people).person
    code, report = _probe(run, sandbox_config, "app", "--user", person.email)
    assert code == 0, report
    assert not report["created"] and report["cleanup"] == f"re-enabled {report['account']}"
    assert sim.account(person.email)["active"] is True


def test_probe_keep_leaves_the_created_user(run, sim, sandbox_config):
    code, report = _probe(run, sandbox_config, "app", "--keep")
    assert code == 0 and report["cleanup"].startswith("kept test account")
    kept = sim.account(report["account"])
    assert kept is not None and kept["active"] is False


def test_probe_names_a_test_user_that_matches_nothing(run, sandbox_config):
    code, report = _probe(run, sandbox_config, "app", "--user", "nobody-7f3a@nowhere.invalid")
    assert code == 3 and report["verdict"] == "error"
    assert "'nobody-7f3a@nowhere.invalid': 0 account(s) match in app" in report["detail"]


def test_probe_of_an_unknown_connector_is_a_usage_error(run, sandbox_config):
    result = run("--config", str(sandbox_config), "connectors", "probe", "jira")
    assert result.exit_code == 2
    assert "no connector named 'jira' (known: app)" in result.output


def test_probe_passes_scim2_server_and_its_conformance(run, tmp_path, scim2_server):
    token = tmp_path / "scim2-token"
    token.write_text(SCIM2_TOKEN)
    config = _config(tmp_path, {"base_url": scim2_server[0], "token": f"file:{token}"})
    code, report = _probe(run, config, "app", "--conformance")
    assert code == 0, report
    assert report["verdict"] == "effective"
    assert report["conformance"] and {c["status"] for c in report["conformance"]} <= {"success", "skipped"}
    assert SCIM2_TOKEN not in json.dumps(report)


def test_probe_flags_scim2_server_behind_a_gate_that_drops_the_write(run, tmp_path, scim2_server):
    """The same real server, its user writes acknowledged and dropped in front of it: flagged."""
    token = tmp_path / "scim2-token"
    token.write_text(SCIM2_TOKEN)
    config = _config(tmp_path, {"base_url": scim2_server[0], "token": f"file:{token}"})
    gate = scim2_server[1]
    gate.lie_for.add("/Users/")
    try:
        code, report = _probe(run, config, "app")
    finally:
        gate.lie_for.discard("/Users/")
    assert code == 3 and report["verdict"] == "ineffective"


def test_probe_says_why_it_could_not_create_a_test_user(run, tmp_path, scim2_server):
    token = tmp_path / "scim2-token"
    token.write_text(SCIM2_TOKEN)
    config = _config(tmp_path, {"base_url": scim2_server[0], "token": f"file:{token}"})
    gate = scim2_server[1]
    gate.deny["POST"] = "this token may not create users"
    try:
        code, report = _probe(run, config, "app")
    finally:
        gate.deny.pop("POST")
    assert code == 3 and report["verdict"] == "error"
    assert report["detail"].startswith("could not get a test account: PermissionDenied")
    assert "this token may not create users" in report["detail"] and "with --user instead" in report["detail"]
