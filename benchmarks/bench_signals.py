"""Shared signals: time from a verified disable to the SET accepted by a local push receiver.

An engine over one instant in-process system disables 1,000 people (cases run 20 at a time, as
a bulk offboarding would) while offboard's transmitter pushes CAEP ``session-revoked`` and RISC
``account-disabled`` to a receiver on loopback configured in ``server.signals.receivers``
(``push_to``: every person). The receiver verifies each SET with PyJWT (not offboard's JOSE
library) before answering 202. For each person we take the disable's ``verified_at`` from the
state database and the receiver's clock when it accepted that person's ``account-disabled``
SET, and print p50/p99 against the goal (p99 < 1 s). The baseline, measured in the same run,
is one bare POST of an already signed SET to the same receiver: what delivery costs without
offboard's feed, signing, outbox and audit.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt

from offboard import (
    Account,
    AccountPage,
    Action,
    CheckResult,
    Connector,
    ConnectorSettings,
    Person,
    Receipt,
    Verification,
    hookimpl,
    plugins,
)
from offboard.config._config import Config, ConnectorConfig
from offboard.engine._engine import Engine
from offboard.signals import ACCOUNT_DISABLED, open_signals

from ._common import report, verdict

PEOPLE, BATCH, GOAL = 1000, 20, 1.0
ISSUER, AUDIENCE = "https://offboard.bench.example", "bench-receiver"


class InstantSystem(Connector):
    """Writes and read-backs in memory: the latency measured is offboard's, not a system's."""

    name = "bench_instant"

    class Settings(ConnectorSettings):
        pass

    def __init__(self, instance, settings=None):
        super().__init__(instance, settings)
        self.state: dict[str, bool] = {}
        self.lock = threading.Lock()

    def check(self) -> CheckResult:
        return CheckResult(True)

    def discover(self, person: Person) -> list[Account]:
        return [Account(self.instance, f"{self.instance}-{person.id}", person.id, person.email)]

    def list_accounts(self, cursor=None) -> AccountPage:
        return AccountPage(())

    def disable_account(self, action: Action) -> Receipt:
        with self.lock:
            self.state[action.key] = True
        return Receipt(action, True, {})

    def verify(self, action: Action, receipt=None) -> Verification:
        with self.lock:
            return Verification(action, self.state.get(action.key, False))


class _Plugin:
    @hookimpl
    def register_connectors(self, register):
        register(InstantSystem)


class Receiver:
    """A push receiver on loopback verifying SETs with PyJWT; notes when each person's SET arrived."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.accepted: dict[str, datetime] = {}  # person email -> when account-disabled was accepted
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                token = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                if token != "bare":
                    header = jwt.get_unverified_header(token)
                    key = next(jwt.PyJWK.from_dict(k) for k in receiver.jwks["keys"] if k["kid"] == header["kid"])
                    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
                    now = datetime.now(UTC)
                    with receiver.lock:
                        receiver.count += 1
                        if ACCOUNT_DISABLED in claims["events"]:
                            receiver.accepted[claims["sub_id"]["email"]] = now
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def measure(people: int = PEOPLE) -> tuple[list[float], float, int, list[float], list[float]]:
    """Seconds from each verified disable to its SET accepted; the bare POST baseline; SETs received;
    and the two legs: verified -> queued in the outbox (feed, signing) and queued -> accepted (push)."""
    pm = plugins.get_plugin_manager()
    if not pm.has_plugin("bench_instant"):
        pm.register(_Plugin(), "bench_instant")
    receiver = Receiver()
    os.environ["OFFBOARD_BENCH_SSF_TOKEN"] = secrets.token_urlsafe(24)
    signals_raw = {
        "issuer": ISSUER,
        "receivers": {
            "bench": {"push_to": receiver.url, "audience": AUDIENCE, "token": "env:OFFBOARD_BENCH_SSF_TOKEN"}
        },
        "feed_seconds": 0.02,
    }
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            policy = root / "bench.yaml"
            policy.write_text("name: bench\nactions: [disable_account]\n")
            config = Config(
                connectors={"sys0": ConnectorConfig(type="bench_instant")},
                default_policy="bench",
                policy_by_type={},
                policies=[str(policy)],
            )
            engine = Engine.open(config, root)
            signals = open_signals(engine, signals_raw, None, datetime.now, root)
            assert signals is not None and signals.transmitter is not None
            signals.transmitter.clock = lambda: datetime.now(UTC)
            receiver.jwks = signals.transmitter.key.jwks()
            with httpx.Client() as client:  # baseline: bare POSTs of a body to the same receiver
                bare = []
                for _ in range(50):
                    start = time.perf_counter()
                    client.post(receiver.url, content=b"bare", headers={"content-type": "application/secevent+jwt"})
                    bare.append(time.perf_counter() - start)
            signals.start()
            staff = [Person(f"p{i}@corp.example", f"p{i}@corp.example") for i in range(people)]
            cases = []
            for first in range(0, people, BATCH):
                batch = [engine.open_case(engine.plan(p)) for p in staff[first : first + BATCH]]
                engine.run_cases(batch)
                cases.extend(batch)
            deadline = time.monotonic() + 60
            while len(receiver.accepted) < people and time.monotonic() < deadline:
                time.sleep(0.05)
            latencies, feed, push = [], [], []
            queued = {(r["person_id"], r["event_type"]): r["created_at"] for r in engine.store.signals.outbox()}
            for case_id in cases:
                (row,) = engine.store.actions(case_id)
                email = json.loads(row["account"])["email"]
                if email in receiver.accepted:
                    latencies.append((receiver.accepted[email] - row["verified_at"]).total_seconds())
                    at = queued[(email, ACCOUNT_DISABLED)]
                    feed.append((at - row["verified_at"]).total_seconds())
                    push.append((receiver.accepted[email] - at).total_seconds())
            signals.stop()
            engine.close()
    finally:
        receiver.close()
    return latencies, statistics.median(bare), receiver.count, feed, push


def run() -> None:
    latencies, bare, received, feed, push = measure()
    if not latencies:
        report("Shared signals", [("verified disable -> SET accepted", "no SET arrived", f"p99 < {GOAL:g} s", "")])
        return
    p50, p99 = _pct(latencies, 0.5), _pct(latencies, 0.99)
    report(
        f"Shared signals: verified disable -> SET accepted by a push receiver ({len(latencies)} people)",
        [
            ("p50", f"{p50 * 1000:.0f} ms", "", ""),
            ("p99", f"{p99 * 1000:.0f} ms", f"< {GOAL * 1000:.0f} ms", verdict(p99 < GOAL)),
            ("p99 / goal", f"{p99 / GOAL:.2f}", "< 1", verdict(p99 < GOAL)),
            (
                "  of which verified -> queued (feed, signing), p50 / p99",
                f"{_pct(feed, 0.5) * 1000:.0f} / {_pct(feed, 0.99) * 1000:.0f} ms",
                "",
                "",
            ),
            (
                "  of which queued -> accepted (push, audit), p50 / p99",
                f"{_pct(push, 0.5) * 1000:.0f} / {_pct(push, 0.99) * 1000:.0f} ms",
                "",
                "",
            ),
            ("bare POST to the same receiver (baseline, median)", f"{bare * 1000:.1f} ms", "", ""),
            ("p50 / bare POST", f"{p50 / bare:.0f}x", "", ""),
            ("SETs accepted (2 per person)", f"{received}", f"{2 * PEOPLE}", verdict(received == 2 * PEOPLE)),
            (
                "people whose account-disabled SET arrived",
                f"{len(latencies)}",
                f"{PEOPLE}",
                verdict(len(latencies) == PEOPLE),
            ),
        ],
    )


if __name__ == "__main__":
    run()
