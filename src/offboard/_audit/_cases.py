"""Cases rebuilt from entries: plans, final results, counts, SLA and compliance findings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ._entry import FINAL_RESULTS, TIME_RE, format_time, parse_time

__all__ = ["CaseBook", "CaseRecord", "parse_duration", "item_key"]

ELAPSED_TOLERANCE_MS = 1000


def parse_duration(text: str) -> int:
    """``24h``, ``4h``, ``90m``, ``2d``, ``3600s`` or plain seconds, as seconds."""
    text = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"{text!r} is not a duration like 24h, 90m, 2d or 3600s")
    return int(number) * units[unit]


def item_key(system: Any, account: Any, kind: Any) -> tuple[str, str, str]:
    """One planned item: system, account id (or name), action kind."""
    account = account if isinstance(account, dict) else {}
    ident = account.get("id") if account.get("id") is not None else account.get("name")
    return (str(system), str(ident), str(kind))


@dataclass
class CaseRecord:
    """What the log says about one case."""

    case: str
    person: str | None = None
    opened: dict[str, Any] | None = None
    closed: dict[str, Any] | None = None
    planned: list[tuple[str, str, str]] = field(default_factory=list)
    actions: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    names: dict[tuple[str, str, str], Any] = field(default_factory=dict)

    def final(self) -> dict[tuple[str, str, str], Any]:
        """Every item (planned or acted on) with its last action, or None."""
        out: dict[tuple[str, str, str], Any] = {key: None for key in self.planned}
        out.update(self.actions)
        return out

    def counts(self) -> dict[str, int]:
        """Items by their last result."""
        return dict(Counter(_result(a) for a in self.actions.values()))

    def termination_at(self) -> str | None:
        """The termination time, from the close or else the open entry."""
        for entry in (self.closed, self.opened):
            if entry and isinstance(entry.get("termination_at"), str):
                return entry["termination_at"]
        return None

    def last_verified_at(self) -> str | None:
        """The latest ``responded_at`` among items whose last result is verified."""
        times = [t for a in self.actions.values() if _result(a) == "verified" and isinstance(t := _responded(a), str)]
        if times and all(TIME_RE.match(t) for t in times):  # one format: text order is time order
            return max(times)
        moments = [(m, t) for t in times if (m := parse_time(t))]
        return max(moments)[1] if moments else None

    def elapsed_ms(self) -> int | None:
        """Milliseconds from termination to the last verified action."""
        start, end = parse_time(self.termination_at()), parse_time(self.last_verified_at())
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
        who = f"case {self.case}" + (f" (person {self.person})" if self.person else "")
        out: list[str] = []
        elapsed = self.elapsed_ms()
        if self.opened is None:
            out.append(f"{who}: actions or a close without a case_opened entry")
        if self.closed is None:
            out.append(f"{who}: opened but never closed")
        else:
            status = self.closed.get("status")
            if status == "incomplete":
                out.append(f"{who}: closed incomplete")
            if status != "cancelled":
                actions = self.actions
                for key in self.planned:
                    action = actions.get(key)
                    if action is None or _result(action) not in FINAL_RESULTS:
                        system, account, kind = key
                        out.append(f"{who}: planned {kind} on {system} account {account} has no final result")
            claimed = self.closed.get("counts")
            if isinstance(claimed, dict):
                mine = {k: v for k, v in self.counts().items() if v}
                theirs = {k: v for k, v in claimed.items() if v}
                if mine != theirs:
                    out.append(f"{who}: case_closed counts {theirs} disagree with the action entries {mine}")
            claimed_ms = self.closed.get("elapsed_ms")
            if isinstance(claimed_ms, int) and elapsed is not None and abs(claimed_ms - elapsed) > ELAPSED_TOLERANCE_MS:
                out.append(f"{who}: case_closed elapsed_ms {claimed_ms} disagrees with the action entries ({elapsed})")
        if sla_seconds is not None and elapsed is not None and elapsed > sla_seconds * 1000:
            out.append(
                f"{who}: SLA missed: last verified action {self.last_verified_at()} is "
                f"{elapsed // 1000}s after termination {self.termination_at()} (SLA {sla_seconds}s)"
            )
        return out


def _result(action: Any) -> Any:
    return action[0] if isinstance(action, tuple) else action.get("result")


def _responded(action: Any) -> Any:
    return action[1] if isinstance(action, tuple) else action.get("responded_at")


class CaseBook:
    """Cases collected from entries in log order; ``keep`` stores whole action entries (for evidence)."""

    def __init__(self, keep: bool = False):
        self.keep = keep
        self.cases: dict[str, CaseRecord] = {}
        self.approval_findings: list[str] = []

    def _case(self, obj: dict[str, Any]) -> CaseRecord | None:
        case = obj.get("case")
        if not isinstance(case, str):
            return None
        record = self.cases.get(case)
        if record is None:
            record = self.cases[case] = CaseRecord(case)
        person = obj.get("person")
        if record.person is None and isinstance(person, dict) and isinstance(person.get("id"), str):
            record.person = person["id"]
        return record

    def add(self, obj: dict[str, Any]) -> None:
        """Take one parsed entry."""
        kind = obj.get("type")
        if kind == "action":
            record = self._case(obj)
            if record is not None:
                key = item_key(obj.get("system"), obj.get("account"), obj.get("kind"))
                record.actions[key] = obj if self.keep else (obj.get("result"), obj.get("responded_at"))
        elif kind == "case_opened":
            record = self._case(obj)
            if record is not None and record.opened is None:
                record.opened = obj
                for item in obj.get("plan") or []:
                    if isinstance(item, dict):
                        key = item_key(item.get("system"), item.get("account"), item.get("kind"))
                        if key not in record.planned:
                            record.planned.append(key)
                        record.names.setdefault(key, (item.get("account") or {}).get("name"))
        elif kind == "case_closed":
            record = self._case(obj)
            if record is not None:
                record.closed = obj
        elif kind == "approval":
            if not obj.get("approver"):
                self.approval_findings.append(f"approval at seq {obj.get('seq')} has no approver")

    def findings(self, sla_seconds: int | None) -> list[str]:
        """Every compliance finding, cases in order of first appearance."""
        out = list(self.approval_findings)
        for record in self.cases.values():
            out.extend(record.findings(sla_seconds))
        return out
