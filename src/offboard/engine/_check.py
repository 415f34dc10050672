"""The residual-access check: what a person still holds, asked of every system, read-only, independent of any case.

For every enabled connector: ``discover`` the person's accounts, apply the policy (protected
accounts are left out, as a case would), read back each planned action kind the connector can
verify without a receipt (``Connector.residual_kinds``), and add what the connector's optional
``residual(person, accounts)`` reports (sessions, OAuth grants, ...). A read-back that disagrees
is a leftover; where ``residual`` names the items of the same account and kind, those named lines
stand in for the read-back's summary (one line per leftover). A system that cannot be searched is
an error: the check cannot say nothing is left.

Every case ends with this check (``cases.check_on_close``): a ``residual_check`` audit entry just
before ``case_closed``. A leftover on an action the case verified turns that action ``unverified``
(it is owed again and retried); the case is ``complete`` only if nothing the policy removes is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..config._durations import aware
from ..config._logging import redact
from ..config._policy import Protection
from ..connector import Connector
from ..errors import ConnectorError
from ..models import Account, Action, ActionStatus, Leftover, Person, Verification
from ._owed import action_entry

if TYPE_CHECKING:
    from ..config._policy import Policy
    from ._engine import Engine
    from ._schedule import Gate

__all__ = ["Residual", "SystemCheck", "residual", "check_system", "check_case", "recent_leavers", "check_recent"]

#: One system's part of a closing check: (leftovers, None), or ([], why it could not be searched).
SystemCheck = tuple[list[Leftover], str | None]


@dataclass
class Residual:
    """What the check found for one person."""

    person: Person
    leftovers: list[Leftover] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # system -> why it could not be searched
    checked: list[str] = field(default_factory=list)  # systems searched

    @property
    def clean(self) -> bool:
        return not self.leftovers and not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "person": self.person.id,
            "clean": self.clean,
            "leftovers": [x.to_dict() for x in self.leftovers],
            "errors": dict(self.errors),
            "checked": list(self.checked),
        }


def residual(
    engine: Engine,
    person: Person,
    policy: Policy | None = None,
    accounts: list[Account] | None = None,
    gate: Gate | None = None,
    done: dict[str, SystemCheck] | None = None,
) -> Residual:
    """Ask every enabled system, read-only, what ``person`` still holds that ``policy`` would remove.

    ``accounts`` (a closing case's own) skips discovery and asks only their systems. ``gate`` (a bulk
    run's) holds each system's reads back until that system has cut everyone's access: the systems
    already through are asked at once, each of the others as soon as it is. ``done``: the systems a bulk
    run has already checked (``check_system``), whose findings are taken as they are."""
    policy = policy or engine.policy_for(person)
    if accounts is None:
        accounts, errors = engine.gather(person)
        names = [n for n in engine.enabled_connectors() if n not in errors]
    else:
        errors = {}
        names = list(dict.fromkeys(a.system for a in accounts if a.system in engine.config.connectors))
    report = Residual(person, errors=dict(errors))
    done = done or {}
    for name in names:
        if name in done:
            found, error = done[name]
            if error is None:
                report.leftovers.extend(found)
                report.checked.append(name)
            else:
                report.errors[name] = error
    names = [n for n in names if n not in done]
    by_system = _planned(engine, policy, [a for a in accounts if a.system in names])
    # A bulk run's closes (``gate``) read each system on that system's own threads: a system whose reads back off
    # or hang never holds the threads another system's checks need (on the engine's shared pool of
    # ``limits.workers``, 200 closing checks under failing vendors queued behind Google's for half a minute).
    # Those closes run on a pool of their own. Everyone else (a single case, which closes on the thread of its
    # last chain, and ``offboard check``) uses the shared pool: a close never waits on a pool its thread is in.
    futures = {}
    for name in sorted(names, key=lambda n: gate is not None and not gate.is_open(n)):  # the systems through first
        pool = engine._pool
        if gate is not None:
            gate.wait(name)
            pool = engine._system_pool(name)
        futures[name] = pool.submit(_check_system, engine, name, person, by_system.get(name, []))
    for name, future in futures.items():
        try:
            report.leftovers.extend(future.result())
            report.checked.append(name)
        except ConnectorError as exc:
            report.errors[name] = redact(f"{type(exc).__name__}: {exc}")
    return report


def _check_system(engine: Engine, name: str, person: Person, actions: list[Action]) -> list[Leftover]:
    connector = engine.connector(name)
    kinds = type(connector).residual_kinds
    found: list[Leftover] = []
    for action in actions:
        if action.kind not in kinds:
            continue
        verification, _ = engine.call(name, connector.verify, action, None)
        if not verification.ok and not verification.pending:
            found.append(Leftover(action.account, action.kind, verification.detail or "read-back disagrees"))
    accounts = list({a.account.ref: a.account for a in actions}.values())
    if type(connector).residual is not Connector.residual:  # asked only of connectors that answer it
        extra, _ = engine.call(name, connector.residual, person, accounts)
        # One line per leftover: where ``residual`` names the items of an account's kind (each app password),
        # the read-back's summary of the same kind ("left: 1 asps") is not printed as well.
        named = {(x.account.id, x.kind) for x in extra}
        found = [x for x in found if (x.account.id, x.kind) not in named] + list(extra)
    return found


def _planned(engine: Engine, policy: Policy, accounts: list[Account]) -> dict[str, list[Action]]:
    """Per system, what a case would act on (``plan_for``, without drawing up a checklist)."""
    by_system: dict[str, list[Action]] = {}
    protection = Protection.combine(policy, engine.config.protected)
    for account in accounts:
        if protection.reason(account):
            continue
        capabilities = type(engine.connector(account.system)).capabilities()
        kinds, _ = policy.actions_for(account.system, engine.config.connectors[account.system].type)
        by_system.setdefault(account.system, []).extend(Action(k, account) for k in kinds if k in capabilities)
    return by_system


def _subject(engine: Engine, case: dict[str, Any]) -> tuple[Person, Policy, list[Account]]:
    """A case's person, policy and own accounts."""
    person = Person.from_dict(json.loads(case["person"]))
    policy = engine.policies.get(case["policy"]) or engine.policy_for(person)
    # The case's own accounts, read back without discovery: a bulk run pays one read per action, not a
    # discovery per system per person (``offboard check`` and ``sweep.check_since`` discover afresh).
    accounts = list(
        {
            (r["system"], r["account_id"]): Account.from_dict(json.loads(r["account"]))
            for r in engine.store.actions(case["id"])
        }.values()
    )
    return person, policy, accounts


def check_system(
    engine: Engine, case_id: str, system: str, subjects: dict[str, tuple[Person, Policy, list[Account]]]
) -> SystemCheck:
    """The closing check of one system for a case whose work there has ended (a bulk run's, ahead of the close:
    the system is read as soon as the person's work there is done, not when the person's slowest system is).
    ``subjects``: the run's case -> (person, policy, accounts), read from the store once per case."""
    try:
        subject = subjects.get(case_id)
        if subject is None:
            subject = subjects[case_id] = _subject(engine, engine._case(case_id))
        person, policy, accounts = subject
        actions = _planned(engine, policy, [a for a in accounts if a.system == system]).get(system, [])
        return _check_system(engine, system, person, actions), None
    except Exception as exc:  # recorded in the close's residual_check entry, as residual() records its errors
        return [], redact(f"{type(exc).__name__}: {exc}")


def check_case(
    engine: Engine, case: dict[str, Any], gate: Gate | None = None, done: dict[str, SystemCheck] | None = None
) -> None:
    """Run the check for a closing case and record it (``residual_check``); leftovers on verified actions turn them
    unverified, so the case closes incomplete and the work is owed again. ``done``: the systems already checked."""
    person, policy, accounts = _subject(engine, case)
    try:
        report = residual(engine, person, policy, accounts, gate, done)
    except Exception as exc:  # the close goes on whatever happens; the entry says the check could not run
        report = Residual(person, errors={"*": redact(f"{type(exc).__name__}: {exc}")})
    rows = {(r["system"], r["account_id"], r["kind"]): r for r in engine.store.actions(case["id"])}
    reopened = []
    for leftover in report.leftovers:
        row = rows.get((leftover.account.system, leftover.account.id, leftover.kind.value))
        if row is None or row["status"] != ActionStatus.VERIFIED.value:
            continue
        verification = Verification(
            Action(leftover.kind, leftover.account), False, {}, f"residual check: {leftover.detail}"
        )
        engine.record(
            "action",
            case["id"],
            action_entry(case, row, ActionStatus.UNVERIFIED, verification=verification.to_dict()),
            action=(
                row["id"],
                {"status": ActionStatus.UNVERIFIED.value, "verification": json.dumps(verification.to_dict())},
            ),
        )
        reopened.append(str(leftover))
    engine.record(
        "residual_check",
        case["id"],
        {
            "case": case["id"],
            "person": {"id": case["person_id"]},
            "clean": report.clean,
            "leftovers": [x.to_dict() for x in report.leftovers],
            "errors": report.errors,
            "checked": report.checked,
            "unverified": reopened,
        },
    )
    if report.leftovers:
        from ..checklist._notifiers import notify
        from ..notifiers import Notice

        try:
            notify(
                engine.config,
                "residual",
                Notice(
                    kind="residual",
                    subject=f"offboard: {person.id} still holds access after case {case['id']}",
                    text="\n".join(str(x) for x in report.leftovers),
                ),
            )
        except Exception as exc:  # a notifier must never change a case's outcome
            engine_log(exc, case["id"])


def engine_log(exc: Exception, case_id: str) -> None:
    import structlog

    structlog.get_logger("offboard.check").warning("residual notice failed", case=case_id, error=redact(str(exc)))


def recent_leavers(engine: Engine, window: timedelta, policy: str | None = None) -> list[tuple[Person, Policy]]:
    """Each person with a case opened within ``window``, once, with that newest case's policy (or ``policy``)."""
    cutoff = engine.clock() - window
    seen: dict[str, tuple[Person, Policy]] = {}
    for case in engine.store.find_cases(limit=100_000):
        if aware(case["created_at"]) < cutoff or case["person_id"] in seen:
            continue
        who = Person.from_dict(json.loads(case["person"]))
        chosen = engine.policy_for(who, policy) if policy else engine.policies.get(case["policy"])
        seen[case["person_id"]] = (who, chosen or engine.policy_for(who))
    return list(seen.values())


def check_recent(engine: Engine, window: timedelta) -> list[Residual]:
    """The check over every recent leaver (sweeps, with ``sweep.check_since``); notify (``residual``) on leftovers."""
    reports = [residual(engine, who, chosen) for who, chosen in recent_leavers(engine, window)]
    found = [r for r in reports if r.leftovers]
    if found:
        from ..checklist._notifiers import notify
        from ..notifiers import Notice

        try:
            notify(
                engine.config,
                "residual",
                Notice(
                    kind="residual",
                    subject=f"offboard: {len(found)} recent leaver(s) still hold access",
                    text="\n".join(f"{r.person.id}: {x}" for r in found for x in r.leftovers),
                ),
            )
        except Exception as exc:  # the check's result stands whatever a notifier does
            engine_log(exc, "-")
    return reports
