"""One person, 5 systems, 100 ms per call, 3 sequential calls each.

Prints wall time over the critical-path bound (the slowest system's chain, 300 ms) and
the speedup over running the same calls one system after another, plus the start-up
time of ``offboard --help``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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

from ._common import median, report, stopwatch, verdict

SYSTEMS, CALLS, LATENCY = 5, 3, 0.100


class SlowSystem(Connector):
    """Every write takes ``latency`` seconds, as if across the internet; reads are instant."""

    name = "bench_slow"

    class Settings(ConnectorSettings):
        latency: float = LATENCY

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

    def _write(self, action: Action) -> Receipt:
        time.sleep(self.settings.latency)
        with self.lock:
            self.state[action.key] = True
        return Receipt(action, True, {})

    revoke_sessions = disable_account = remove_memberships = _write

    def verify(self, action: Action, receipt=None) -> Verification:
        with self.lock:
            return Verification(action, self.state.get(action.key, False))


class _Plugin:
    @hookimpl
    def register_connectors(self, register):
        register(SlowSystem)


def _engine(root: Path) -> Engine:
    pm = plugins.get_plugin_manager()
    if not pm.has_plugin("bench_slow"):
        pm.register(_Plugin(), "bench_slow")
    config = Config(
        connectors={f"sys{i}": ConnectorConfig(type="bench_slow") for i in range(SYSTEMS)},
        default_policy="bench",
        policy_by_type={},
        policies=[str(_policy(root))],
    )
    return Engine.open(config, root)


def _policy(root: Path) -> Path:
    path = root / "bench.yaml"
    path.write_text("name: bench\nactions: [revoke_sessions, disable_account, remove_memberships]\n")
    return path


def run(repeat: int = 5) -> None:
    walls, serials = [], []
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            engine = _engine(Path(tmp))
            person = Person(f"p{i}@corp.example", f"p{i}@corp.example")
            plan = engine.plan(person)
            case = engine.open_case(plan)
            with stopwatch() as wall:
                result = engine.run_cases([case])[0]
            assert result.ok, result.detail
            # baseline: the same calls, one system after another, no engine
            conns = [engine.connector(f"sys{s}") for s in range(SYSTEMS)]
            with stopwatch() as serial:
                for action in plan.actions:
                    conns[int(action.account.system[3:])].apply(action)
            engine.close()
        walls.append(wall[0])
        serials.append(serial[0])
    bound = CALLS * LATENCY
    wall = median(walls)
    ratio = wall / bound
    startup, bare = [], []
    for _ in range(7):
        with stopwatch() as t:
            subprocess.run([sys.executable, "-m", "offboard", "--help"], capture_output=True, check=True)
        startup.append(t[0])
        with stopwatch() as t:
            subprocess.run([sys.executable, "-c", "pass"], capture_output=True, check=True)
        bare.append(t[0])
    ours = median(startup) - median(bare)
    report(
        "Engine: one person, 5 systems x 3 calls x 100 ms",
        [
            ("wall time (median of %d)" % repeat, f"{wall * 1000:.0f} ms", "", ""),
            ("critical-path bound", f"{bound * 1000:.0f} ms", "", ""),
            ("wall / bound", f"{ratio:.3f}", "<= 1.15", verdict(ratio <= 1.15)),
            ("speed-up over one system after another", f"{median(serials) / wall:.2f}x", f"ideal {SYSTEMS}x", ""),
            ("`offboard --help` start-up (median)", f"{median(startup) * 1000:.0f} ms", "", ""),
            ("  of which Python itself (`python -c pass`)", f"{median(bare) * 1000:.0f} ms", "", ""),
            ("  of which offboard", f"{ours * 1000:.0f} ms", "< 300 ms", verdict(ours < 0.3)),
        ],
    )


if __name__ == "__main__":
    run()
