"""Cases rebuilt from entries: plans, final results, counts, SLA and compliance findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from ..config._durations import parse_duration
from ._entry import ABSENT, FINAL_RESULTS, AccountRef, PersonRef, PlanItem, format_time, parse_time, times_match

__all__ = ["CaseBook", "CaseRecord", "sla_seconds", "item_key"]

ELAPSED_TOLERANCE_MS = 1000


def sla_seconds(text: str) -> int:
    """An SLA such as ``24h``, ``90m``, ``2d``, ``3600s`` or plain seconds, in seconds; it must be positive."""
    seconds = int(parse_duration(text, bare="s").total_seconds())
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration such as 24h, 90m, 2d or 3600 (it must be longer than zero)")
    return seconds


def item_key(system: Any, account: Any, kind: Any) -> tuple[str, str, str]:
    """One planned item: system, account id (or name), action kind."""
    if type(account) is dict and type(system) is str and type(kind) is str:  # every well-formed entry
        ident = account.get("id")
        if ident is None:
            ident = account.get("name")
        if type(ident) is str:
            return (system, ident, kind)
    ident = None
    if isinstance(account, dict):
        ident = account.get("id")
        if ident is None:
            ident = account.get("name")
    return (
        system if type(system) is str else str(system),
        ident if type(ident) is str else str(ident),
        kind if type(kind) is str else str(kind),
    )


@dataclass
class CaseRecord:
    """What the log says about one case."""

    case: str
    person: str | None = None
    opened: Any = None  # the entries: dicts, or ScanEntry structs that read as dicts
    closed: Any = None
    planned: list[tuple[str, str, str]] = field(default_factory=list)
    actions: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    names: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    #: ``case_undone`` entries: {actor, time, failed} (``keep``: the whole entry), in log order.
    undone: list[dict[str, Any]] = field(default_factory=list)
    #: Items an ``action`` entry with result ``undone`` reversed after the close: kept apart from
    #: ``actions``, which stay what the case did (and what ``case_closed`` counted).
    reversed: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def take_plan(self, plan: Any) -> None:
        """The items of a ``case_opened`` entry's plan, in plan order (a key once), with their account names.
        A plan that is not a list (the writer refuses one) is a finding, not an error here."""
        if type(plan) is not list:
            return
        planned, names = self.planned, self.names
        for item in plan:
            if type(item) is PlanItem:  # decoded by TypedEntry: absent fields read as missing
                system, kind = item.system, item.kind
                account: Any = item.account
                if type(account) is AccountRef:
                    ident, name = account.id, account.name
                    if type(ident) is str and type(system) is str and type(kind) is str:  # the common case
                        key = (system, ident, kind)
                        if key not in names:
                            planned.append(key)
                            names[key] = None if name is ABSENT else name
                        continue
                    account = account.as_dict()
                item = {k: v for k, v in (("system", system), ("account", account), ("kind", kind)) if v is not ABSENT}
            if type(item) is dict:
                account = item.get("account")
                key = item_key(item.get("system"), account, item.get("kind"))
                if key not in names:
                    planned.append(key)
                    names[key] = account.get("name") if type(account) is dict else None

    def merge(self, later: CaseRecord) -> None:
        """Take in what a later stretch of the log says about this case (as if read in one pass)."""
        if self.person is None:
            self.person = later.person
        if self.opened is None:
            self.opened, self.planned, self.names = later.opened, list(later.planned), dict(later.names)
        if later.closed is not None:
            self.closed = later.closed
        self.actions.update(later.actions)
        self.undone.extend(later.undone)
        self.reversed.update(later.reversed)

    def final(self) -> dict[tuple[str, str, str], Any]:
        """Every item (planned or acted on) with its last action (an undo's, if one reversed it), or None."""
        out: dict[tuple[str, str, str], Any] = {key: None for key in self.planned}
        out.update(self.actions)
        out.update(self.reversed)
        return out

    def undone_fully(self) -> bool:
        """An undo ran for the case and reversed everything it could (nothing failed): a final state."""
        return any(not entry.get("failed") for entry in self.undone)

    def status(self) -> str | None:
        """The case's final word: ``cancelled`` once fully undone, else the close's status (None while open)."""
        if self.undone_fully():
            return "cancelled"
        closed = self.closed.get("status") if self.closed else None
        return closed if isinstance(closed, str) else None

    def counts(self) -> dict[str, int]:
        """Items by their last result."""
        return self._tally()[0]

    def _tally(self) -> tuple[dict[Any, int], str | None]:
        """Items by their last result, and the latest ``responded_at`` among verified items, in one pass."""
        counts: dict[Any, int] = {}
        times: list[str] = []
        for action in self.actions.values():
            if type(action) is tuple:
                result, responded = action
            else:
                result, responded = action.get("result"), action.get("responded_at")
            if not isinstance(result, (str, int, type(None))):
                result = repr(result)  # a tampered entry: still counted, never a crash
            counts[result] = counts.get(result, 0) + 1
            if result == "verified" and isinstance(responded, str):
                times.append(responded)
        return counts, _latest(times)

    def termination_at(self) -> str | None:
        """The termination time, from the close or else the open entry."""
        for entry in (self.closed, self.opened):
            if entry and isinstance(entry.get("termination_at"), str):
                return entry["termination_at"]
        return None

    def last_verified_at(self) -> str | None:
        """The latest ``responded_at`` among items whose last result is verified."""
        return self._tally()[1]

    def elapsed_ms(self, last_verified: str | None | bool = False) -> int | None:
        """Milliseconds from termination to the last verified action."""
        if last_verified is False:
            last_verified = self.last_verified_at()
        start, end = _moment(self.termination_at()), _moment(last_verified)
        if start is None or end is None:
            return None
        delta = end - start
        return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000

    def deadline(self, sla_seconds: int | None) -> str | None:
        """Termination time plus the SLA."""
        from datetime import timedelta

        start = parse_time(self.termination_at())
        if start is None or sla_seconds is None:
            return None
        return format_time(start + timedelta(seconds=sla_seconds))

    def findings(self, sla_seconds: int | None) -> list[str]:
        """Compliance findings for this case."""
        return [] if self._clean(sla_seconds) else self._findings(sla_seconds)

    def _clean(self, sla_seconds: int | None) -> bool:
        """True only if ``_findings`` would find nothing: the common case (opened, closed, every item's
        result final, the counts and elapsed time as claimed, within the SLA), checked in one pass.
        False means "look closely", not that something is wrong."""
        closed, actions, opened = self.closed, self.actions, self.opened
        if opened is None or closed is None or self.reversed or self.undone:
            return False
        plan = opened.get("plan") if type(opened) is dict else opened.plan  # ScanEntry: absent is ABSENT
        if type(closed) is dict:
            status, claimed, claimed_ms, ended = (closed.get(k) for k in _CLOSE_FIELDS)
        else:
            status, claimed, claimed_ms, ended = _close_fields(closed)
        if type(plan) is not list or status == "incomplete" or status == "cancelled":
            return False
        counts: dict[str, int] = {}
        times: list[str] = []
        final = FINAL_RESULTS
        for action in actions.values():
            if type(action) is not tuple:
                return False
            result, responded = action
            if type(result) is not str or result not in final:
                return False
            counts[result] = counts.get(result, 0) + 1
            if result == "verified":
                if type(responded) is not str:
                    return False
                times.append(responded)
        for key in self.planned:
            if key not in actions:
                return False
        if isinstance(claimed, dict) and {k: v for k, v in claimed.items() if v} != counts:
            return False
        if not times:
            return True  # no verified action: no elapsed time to check
        if not times_match(times):
            return False
        if type(ended) is not str:  # the close's termination time, else the open entry's
            ended = self.termination_at()
        start, end = _moment(ended), _moment(max(times))
        if start is None or end is None:
            return True  # the elapsed time is unknown: nothing to compare
        delta = end - start
        elapsed = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
        if isinstance(claimed_ms, int) and abs(claimed_ms - elapsed) > ELAPSED_TOLERANCE_MS:
            return False
        return sla_seconds is None or elapsed <= sla_seconds * 1000

    def _findings(self, sla_seconds: int | None) -> list[str]:
        found: list[str] = []
        counts, last_verified = self._tally()
        elapsed = self.elapsed_ms(last_verified)
        if self.opened is None:
            found.append("actions or a close without a case_opened entry")
        elif not isinstance(plan := self.opened.get("plan"), list):
            what = "missing" if plan is None else f"a JSON {_JSON_TYPES.get(type(plan), 'value')}"
            found.append(f"case_opened plan is {what}, not a list of items")
        closed = self.closed
        if closed is None:
            found.append("opened but never closed")
        else:
            status = closed.get("status")
            if status == "incomplete" and not self.undone_fully():  # undone: reversed, nothing is owed
                found.append("closed incomplete")
            if status != "cancelled":
                actions = self.actions
                for key in self.planned:
                    action = actions.get(key)
                    result = None if action is None else _result(action)
                    if not isinstance(result, str) or result not in FINAL_RESULTS:
                        system, account, kind = key
                        found.append(f"planned {kind} on {system} account {account} has no final result")
            claimed = closed.get("counts")
            if isinstance(claimed, dict):
                theirs = {k: v for k, v in claimed.items() if v}
                if counts != theirs:
                    found.append(f"case_closed counts {theirs} disagree with the action entries {counts}")
            claimed_ms = closed.get("elapsed_ms")
            if isinstance(claimed_ms, int) and elapsed is not None and abs(claimed_ms - elapsed) > ELAPSED_TOLERANCE_MS:
                found.append(f"case_closed elapsed_ms {claimed_ms} disagrees with the action entries ({elapsed})")
        if self.reversed and not self.undone:
            found.append(f"{len(self.reversed)} action(s) undone without a case_undone entry")
        for entry in self.undone:
            failed = entry.get("failed")
            if failed:
                listed = "; ".join(map(str, failed)) if isinstance(failed, list) else str(failed)
                found.append(f"undo by {entry.get('actor') or 'unknown'} could not restore: {listed}")
        if sla_seconds is not None and elapsed is not None and elapsed > sla_seconds * 1000:
            found.append(
                f"SLA missed: last verified action {last_verified} is "
                f"{elapsed // 1000}s after termination {self.termination_at()} (SLA {sla_seconds}s)"
            )
        if not found:
            return found
        who = f"case {self.case}" + (f" (person {self.person})" if self.person else "")
        return [f"{who}: {what}" for what in found]


_JSON_TYPES = {bool: "boolean", int: "number", str: "string", dict: "object"}
_CLOSE_FIELDS = ("status", "counts", "elapsed_ms", "termination_at")
_close_fields = attrgetter(*_CLOSE_FIELDS)


def _latest(times: list[str]) -> str | None:
    if times and times_match(times):  # one format: text order is time order
        return max(times)
    moments = [(m, t) for t in times if (m := parse_time(t))]
    return max(moments)[1] if moments else None


_MOMENTS: dict[str, Any] = {}


def _moment(text: Any) -> Any:
    """``parse_time``, remembering recent answers (termination times repeat across a person's cases)."""
    if not isinstance(text, str):
        return None
    moment = _MOMENTS.get(text)
    if moment is None:
        moment = parse_time(text)
        if len(_MOMENTS) > 50_000:
            _MOMENTS.clear()
        _MOMENTS[text] = moment
    return moment


def _result(action: Any) -> Any:
    return action[0] if isinstance(action, tuple) else action.get("result")


class CaseBook:
    """Cases collected from entries in log order; ``keep`` stores whole action entries (for evidence)."""

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.cases: dict[str, CaseRecord] = {}
        self.approval_findings: list[str] = []

    def add(self, obj: dict[str, Any]) -> None:
        """Take one parsed entry."""
        kind = obj.get("type")
        if kind == "approval":
            if not obj.get("approver"):
                self.approval_findings.append(f"approval at seq {obj.get('seq')} has no approver")
            return
        if kind not in ("action", "case_opened", "case_closed", "case_undone"):
            return
        case = obj.get("case")
        if not isinstance(case, str):
            return
        record = self.cases.get(case)
        if record is None:
            record = self.cases[case] = CaseRecord(case)
        if record.person is None:
            person = obj.get("person")
            if type(person) is PersonRef:  # decoded by TypedEntry
                person = {"id": person.id}
            if isinstance(person, dict) and isinstance(person.get("id"), str):
                record.person = person["id"]
        if kind == "action":
            account = obj.get("account")
            if type(account) is AccountRef:  # decoded by TypedEntry
                account = account.as_dict()
            key = item_key(obj.get("system"), account, obj.get("kind"))
            kept = obj if self.keep else (obj.get("result"), obj.get("responded_at"))
            if obj.get("result") == "undone":  # a reversal after the close, not what the case did
                record.reversed[key] = kept
            else:
                record.actions[key] = kept
        elif kind == "case_undone":
            record.undone.append(obj if self.keep else {k: obj.get(k) for k in ("actor", "time", "failed")})
        elif kind == "case_opened":
            if record.opened is None:
                record.opened = obj
                record.take_plan(obj.get("plan"))
        else:
            record.closed = obj

    def findings(self, sla_seconds: int | None) -> list[str]:
        """Every compliance finding, cases in order of first appearance."""
        out = list(self.approval_findings)
        for record in self.cases.values():
            out.extend(record.findings(sla_seconds))
        return out
