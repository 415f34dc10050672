"""``offboard demo``: a departing person, a simulated company, every system, end to end."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..config._config import load_config
from ..config._paths import data_dir
from ..engine._engine import Engine, Plan
from ..models import Person

out = Console(highlight=False)


def pick_departing(sandbox) -> Person:
    """The company's leaver (set up for a handover) when it is in every simulated system, else an employee
    with an account in every simulated system, not protected."""
    leaver = sandbox.company.leaver
    if leaver is not None and leaver.person is not None and set(leaver.systems) >= set(sandbox.systems):
        return leaver.person
    for ident in sandbox.company.identities:
        person = ident.person
        if person and person.type == "employee" and set(ident.systems) >= set(sandbox.systems) and person.manager:
            return person
    for ident in sandbox.company.identities:
        if ident.person:
            return ident.person
    raise RuntimeError("the simulated company has nobody in it; use --people 1 or more")


def run_demo(people: int = 25, latency: int = 40, seed: int = 7, as_json: bool = False) -> int:
    """Run the demo; returns the exit code (0 complete, 3 incomplete). ``as_json``: one JSON document, no tables.

    The simulated company's files (secrets, TLS key, its config) are removed afterwards; the case and the
    signed audit log stay in the data directory."""
    started = time.monotonic()
    home = data_dir()
    demo_dir = home / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    try:
        if as_json:
            return _run_demo_json(people, latency, seed, home, demo_dir, started)
        return _run_demo(people, latency, seed, home, demo_dir, started)
    finally:  # the simulators' secrets, keys and a config pointing at their (now closed) ports
        shutil.rmtree(demo_dir, ignore_errors=True)


def _run_demo(people: int, latency: int, seed: int, home: Path, demo_dir: Path, started: float) -> int:
    from ..sandbox import Sandbox
    from ._cases import Progress, print_checklist, print_plan, result_table

    out.print(
        f"[bold]offboard demo[/]: starting a simulated company of {people} people "
        f"(Entra ID, Google Workspace, Slack, GitHub, a SCIM app; {latency} ms per request)"
    )
    with Sandbox(people=max(people, 1), seed=seed, latency_ms=latency, data_dir=demo_dir / "sandbox") as sandbox:
        config_path = sandbox.write_config(demo_dir / "offboard.yaml")
        engine = Engine.open(load_config(config_path), home)
        try:
            person = pick_departing(sandbox)
            out.print(
                f"\n[bold]{escape(person.name or person.id)}[/] ({escape(person.id)}, {person.type}, manager "
                f"{escape(person.manager or '-')}) has left. What would happen:\n"
            )
            with Progress(live=out.is_terminal) as progress:

                def show(plan: Plan) -> bool:
                    print_plan(plan)
                    out.print("\nRevoking in parallel across every system, then reading each one back:\n")
                    progress.start(plan.actions)
                    return True

                result = engine.revoke(
                    person.id, trigger="demo", reason="offboard demo", confirm=show, progress=progress
                )
            assert result is not None  # show() never turns the plan down
            out.print(result_table(result, accounts=False))
            out.print(read_back_table(sandbox, person))
            print_checklist(result)
        finally:
            engine.close()
    elapsed = time.monotonic() - started
    colour = "green" if result.ok else "red"
    out.print(f"\n[{colour}]Case {result.case_id}: {result.status.value}[/] in {elapsed:.1f} s.")
    out.print(f"Its record: state in {home / 'offboard.db'}, signed audit log in {home / 'audit'}.")
    out.print(
        f"Next: [bold]offboard status {result.case_id}[/]  and  [bold]offboard audit verify[/]"
        + (f"  (data directory {home})" if not _is_default(home) else "")
    )
    return 0 if result.ok else 3


def _run_demo_json(people: int, latency: int, seed: int, home: Path, demo_dir: Path, started: float) -> int:
    from ..sandbox import Sandbox
    from ._main import emit_json

    with Sandbox(people=max(people, 1), seed=seed, latency_ms=latency, data_dir=demo_dir / "sandbox") as sandbox:
        config_path = sandbox.write_config(demo_dir / "offboard.yaml")
        engine = Engine.open(load_config(config_path), home)
        try:
            person = pick_departing(sandbox)
            result = engine.revoke(person.id, trigger="demo", reason="offboard demo", confirm=lambda plan: True)
            assert result is not None
            read_back = {s: state for s, state in _read_back(sandbox, person).items() if state is not None}
        finally:
            engine.close()
    emit_json(
        {
            "case": result.to_dict(),
            "read_back": read_back,
            "seconds": round(time.monotonic() - started, 3),
            "data_dir": str(home),
        }
    )
    return 0 if result.ok else 3


def read_back_table(sandbox, person: Person) -> Table:
    """What each simulator now says about the person's account, read directly from its state."""
    table = Table(title="Read back from each system", title_justify="left")
    table.add_column("system")
    table.add_column("state now")
    for system, state in _read_back(sandbox, person).items():
        table.add_row(system, escape(_summary(state)))
        if system == "google_workspace" and state:  # the handover, beside the disable
            keys = ("mail_delegates", "auto_reply", "forwarding", "forwarding_filters", "tokens", "licenses", "devices")
            shown = {k: state[k] for k in keys if k in state}
            table.add_row("  handover", escape(json.dumps(shown, default=str)[:160]))
    return table


def _read_back(sandbox, person: Person) -> dict[str, Any]:
    """Each simulator's own state of the person's account (None: no account there); GitHub by login."""
    ident = sandbox.company.identity(person.id)
    out = {}
    for system in sandbox.systems:
        key = ident.github_login if system == "github" and ident is not None and ident.github_login else None
        out[system] = sandbox.account(system, key or person.email or person.id)
    return out


def _summary(state: dict | None) -> str:
    if state is None:
        return "no account"
    keys = (
        "accountEnabled",
        "suspended",
        "active",
        "deleted",
        "state",
        "status",
        "active_keys",
        "console_password",
        "role",
        "memberOf",
        "groups",
        "assignedLicenses",
        "sessions",
    )
    shown = {k: state[k] for k in keys if k in state}
    return json.dumps(shown or state, default=str)[:110]


def _is_default(home: Path) -> bool:
    import platformdirs

    return home == Path(platformdirs.user_data_dir("offboard"))
