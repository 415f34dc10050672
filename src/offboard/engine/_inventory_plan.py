"""Planning a bulk run from the account inventory instead of discovering each person everywhere.

Discovery asks every system about every person (about ten requests a person across five
systems); the inventory lists each system once, in pages (``inventory._inventory.sync``),
and ties accounts to people by the configured rules. A person is then planned from the
accounts the inventory holds for them, as discovery would have found them (active or not).

The inventory cannot answer for every system, and there the person is discovered on that
system alone: a system that cannot list, whose last sync failed (or never ran), and a
system holding active accounts with nothing to correlate by (``inventory.uncorrelated``)
for a person it ties no account to (one of those accounts might be theirs).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..config._logging import redact
from ..errors import ConnectorError, OffboardError
from ..inventory import _inventory
from ..models import Account, Person, SyncStatus

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["plan_from_inventory"]


def plan_from_inventory(
    engine: Engine, people: list[Person], policy: str | None, sync: bool = True, threads: int = 8
) -> tuple[list[Any], Any, dict[str, int]]:
    """A bulk plan per person (or a string saying why there is nothing to do), the sync report (None when
    the stored inventory was used), and per system how many people had to be discovered there."""
    if not engine.config.people:
        raise OffboardError(
            "planning from the inventory needs a people source (config key people:): "
            "the inventory ties accounts to the people it lists"
        )
    report = _inventory.sync(engine) if sync else None
    names = engine.enabled_connectors()
    last = engine.store.inventory.last_syncs()
    if report is not None:
        last.update({s.system: SyncStatus.OK.value if s.ok else SyncStatus.FAILED.value for s in report.systems})
    # systems the inventory cannot answer for anyone: discover everybody there
    blind = {n for n in names if last.get(n) != SyncStatus.OK.value}
    from ..config._policy import Protection

    protection = Protection.combine(engine.policies.get(engine.config.default_policy), engine.config.protected)
    unsure = set(_inventory.uncorrelated(engine.store, protection)) - blind
    held = _held(engine, [p.id for p in people], set(names) - blind)
    asks = {p.id: sorted(blind | (unsure - {a.system for a in held.get(p.id, ())})) for p in people}
    discovered: Counter[str] = Counter(s for systems in asks.values() for s in systems)

    def one(person: Person) -> Any:
        accounts = list(held.get(person.id, ()))
        errors: dict[str, str] = {}
        for name in asks[person.id]:
            try:
                found, _ = engine.call(name, engine.connector(name).discover, person)
                accounts += list(found)
            except ConnectorError as exc:
                errors[name] = redact(f"{type(exc).__name__}: {exc}")
        if not accounts and not errors:
            return "no account in the inventory" + (" nor found by discovery" if asks[person.id] else "")
        return engine.plan_for(person, engine.policy_for(person, policy), accounts, errors, bulk=True)

    with ThreadPoolExecutor(threads, thread_name_prefix="offboard-bulk-plan") as pool:
        plans = list(pool.map(one, people))
    return plans, report, dict(discovered)


def _held(engine: Engine, person_ids: list[str], systems: set[str]) -> dict[str, list[Account]]:
    """Every inventoried account (active or not, as discovery finds them) of these people on ``systems``."""
    out: dict[str, list[Account]] = {}
    for start in range(0, len(person_ids), 500):
        chunk = person_ids[start : start + 500]
        for row in engine.store.inventory.accounts(person_ids=chunk, by_name=False):
            if row["system"] in systems:
                out.setdefault(row["person_id"], []).append(_inventory.account(row))
    return out
