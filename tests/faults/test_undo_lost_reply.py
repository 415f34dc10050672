"""Undo after a vendor applied a disable whose reply was lost, for every HTTP connector (issue 17).

A proxy in front of each sandbox simulator forwards the disable's write, lets the simulator apply
it, drops the answer and closes the connection. The engine retries the call; the retry reads the
account already disabled (by offboard's own lost write) and records "already disabled". Undo must
still give the person their account back: the state the first attempt read before writing is the
original (``Connector.keep_before``), not what the retry found. (Google's and Slack's SDKs resend
the write themselves after a dropped connection, so their retry reads nothing new; they are covered
all the same.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from offboard.audit._verify import verify_log
from offboard.config._config import Config, ConnectorConfig, Limits
from offboard.engine._engine import Engine
from offboard.sandbox import Sandbox

from ._http_proxy import LosingProxy


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(people=8, seed=11) as sb:
        yield sb


def _entra(method: str, path: str, body: bytes) -> bool:
    return method == "PATCH" and "/users/" in path and b"accountEnabled" in body


def _google(method: str, path: str, body: bytes) -> bool:
    return method in ("PUT", "PATCH") and "/admin/directory/v1/users/" in path and b"suspended" in body


def _scim(method: str, path: str, body: bytes) -> bool:
    return method in ("PUT", "PATCH") and "/Users/" in path and b"active" in body


def _slack(method: str, path: str, body: bytes) -> bool:
    return method == "DELETE" and "/scim/" in path and "/Users/" in path  # Slack deactivates by DELETE


def _github(method: str, path: str, body: bytes) -> bool:
    return method == "DELETE" and "/memberships/" in path


#: system -> (which request's reply is lost, the URL settings to send through the proxy, is the account enabled)
CASES: dict[str, tuple[Any, tuple[str, ...], Any]] = {
    "entra": (_entra, ("authority_url", "graph_url"), lambda a: a["accountEnabled"]),
    "google_workspace": (_google, ("api_url",), lambda a: not a["suspended"]),
    "scim": (_scim, ("base_url",), lambda a: a.get("active", True)),
    "slack": (_slack, ("api_url", "scim_url", "scim_v1_url"), lambda a: a["active"]),
    "github": (_github, ("api_url",), lambda a: a["member"]),
}


def _leaver(sandbox: Sandbox, system: str) -> tuple[str, dict[str, Any]]:
    """Someone with an enabled account in ``system`` (not protected)."""
    enabled = CASES[system][2]
    for person in sandbox.company.people:
        email = person.email
        if email.startswith("breakglass"):
            continue
        account = sandbox.account(system, email)
        if account is not None and enabled(account) and account.get("state", "active") == "active":
            return email, account
    raise AssertionError(f"no enabled {system} account in the sandbox company")


def _engine(sandbox: Sandbox, system: str, proxy: LosingProxy, home: Path) -> Engine:
    config = sandbox.config()
    cfg = dict(config["connectors"][system])
    settings = dict(cfg["settings"])
    for key in CASES[system][1]:
        settings[key] = proxy.url(settings[key])
    limits = Limits(max_attempts=4, min_retry_wait=0.05, max_retry_wait=0.2)
    return Engine.open(
        Config.model_validate(
            {
                **{k: v for k, v in config.items() if k != "connectors"},
                "connectors": {system: ConnectorConfig(type=cfg["type"], settings=settings)},
                "limits": limits,
            }
        ),
        home,
    )


@pytest.mark.parametrize("system", sorted(CASES))
def test_undo_after_a_lost_reply_gives_the_account_back(sandbox, system, tmp_path):
    cut, keys, enabled = CASES[system]
    upstream = sandbox.config()["connectors"][system]["settings"][keys[0]]
    tls = None
    if upstream.startswith("https"):
        assert sandbox.ca_file is not None
        tls = (sandbox.ca_file, sandbox.ca_file.with_name("sandbox-key.pem"), sandbox.ca_file)
    proxy = LosingProxy(upstream, cut, tls=tls)
    email, _ = _leaver(sandbox, system)
    engine = _engine(sandbox, system, proxy, tmp_path)
    try:
        result = engine.revoke(email, policy="suspend-only")
        assert result is not None
        assert proxy.cuts == 1, proxy.seen  # the disable landed; its answer never did
        assert not enabled(sandbox.account(system, email))
        disable = next(r for r in engine.store.actions(result.case_id) if r["kind"] == "disable_account")
        assert disable["status"] == "verified"

        undone = engine.undo(result.case_id, actor="test")
        assert enabled(sandbox.account(system, email)), f"{email} is still disabled in {system} after undo: {undone}"
        assert any("disable_account" in r for r in undone["restored"]), undone
        assert not undone["failed"], undone
        assert engine.store.case(result.case_id)["status"] == "cancelled"
    finally:
        engine.close()
        proxy.close()
    assert verify_log(tmp_path / "audit").exit_code == 0
