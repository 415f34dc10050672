"""Inventory sync of 100,000 accounts across 5 systems (20,000 each, pages of 500), correlated to 20,000 people.

Runs in a child process so the peak resident memory measured (ru_maxrss) is the sync's own,
and prints wall time, accounts per second and peak memory against the 500 MB goal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from ._common import report, verdict

SYSTEMS, PER_SYSTEM, PEOPLE, PAGE = 5, 20_000, 20_000, 500

CHILD = textwrap.dedent(f"""
    import json, resource, sys, tempfile, time
    from pathlib import Path
    from offboard import Account, AccountPage, Connector, ConnectorSettings, hookimpl, plugins
    from offboard.config._config import Config
    from offboard.engine._engine import Engine
    from offboard.inventory._inventory import sync

    class Listing(Connector):
        '''A system that lists {PER_SYSTEM} accounts in pages of {PAGE}, built on demand like an API would stream them.'''
        name = "bench_listing"
        class Settings(ConnectorSettings):
            offset: int = 0
        def list_accounts(self, cursor=None):
            start = int(cursor or 0)
            stop = min(start + {PAGE}, {PER_SYSTEM})
            accounts = tuple(
                Account(self.instance, f"{{self.instance}}-{{n:06d}}", f"user{{(n + self.settings.offset) % {PEOPLE + 500}}}@corp.example",
                        f"user{{(n + self.settings.offset) % {PEOPLE + 500}}}@corp.example", n % 17 != 0, n % 997 == 0,
                        {{"employeeId": f"E{{n:06d}}"}})
                for n in range(start, stop))
            return AccountPage(accounts, str(stop) if stop < {PER_SYSTEM} else None)

    class Plugin:
        @hookimpl
        def register_connectors(self, register):
            register(Listing)

    plugins.get_plugin_manager().register(Plugin(), "bench_inventory")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hr = tmp / "hr.json"
        hr.write_text(json.dumps([{{"email": f"user{{i}}@corp.example", "employee_id": f"P{{i}}"}} for i in range({PEOPLE})]))
        config = Config.model_validate({{
            "connectors": {{f"sys{{s}}": {{"type": "bench_listing", "settings": {{"offset": s * 3}}}} for s in range({SYSTEMS})}},
            "people": [{{"type": "hr_export", "settings": {{"path": str(hr)}}}}],
        }})
        engine = Engine.open(config, tmp)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        result = sync(engine)
        wall = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        engine.close()
    print(json.dumps({{"wall": wall, "peak_kb": peak, "before_kb": before, "accounts": sum(s.accounts for s in result.systems),
                      "matched": sum(s.matched for s in result.systems), "ok": result.ok}}))
""")


def run() -> None:
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the inventory benchmark failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    peak_mb = out["peak_kb"] / 1024
    report(
        f"Inventory: sync of {out['accounts']:,} accounts across {SYSTEMS} systems, {PEOPLE:,} people",
        [
            ("wall time", f"{out['wall']:.1f} s", "", ""),
            ("accounts per second", f"{out['accounts'] / out['wall']:,.0f}", "", ""),
            ("accounts correlated", f"{out['matched']:,}", "", ""),
            ("peak memory (RSS, whole process)", f"{peak_mb:.0f} MB", "< 500 MB", verdict(peak_mb < 500 and out["ok"])),
            ("memory before the sync", f"{out['before_kb'] / 1024:.0f} MB", "", ""),
        ],
    )


if __name__ == "__main__":
    run()
