"""Console output for people: a spinner per system while discovering, problems in words, no Python reprs."""

from __future__ import annotations

import re
import threading
from typing import Any

__all__ = ["DiscoverySpinner", "case_problems", "plain", "problem_lines", "summary_line", "read_back"]

_TUPLE_REPR = re.compile(r"""^\(\s*(?P<q>['"])(?P<body>.*)(?P=q)\s*,?\s*\)$""", re.S)
_LIST_REPR = re.compile(r"""^\[\s*(?P<q>['"])(?P<body>.*)(?P=q)\s*\]$""", re.S)
_CLASS_PREFIX = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Denied|Limited|Failure|Timeout|Rejected):\s+"
)


def plain(text: Any) -> str:
    """A reason in words: no nested tuple or list reprs, no leading exception class name."""
    value = str(text or "").strip()
    for _ in range(8):  # ("('socket ssl wrapping error',)",) -> socket ssl wrapping error
        match = _TUPLE_REPR.match(value) or _LIST_REPR.match(value)
        if not match:
            break
        value = match.group("body").replace("\\'", "'").replace('\\"', '"').strip()
    previous = None
    while previous != value:
        previous = value
        value = _CLASS_PREFIX.sub("", value, count=1)
    return value


def read_back(item: dict[str, Any]) -> str:
    """What reading the system back showed, in words, without repeating the account's name."""
    verification = item.get("verification") or {}
    detail = str(verification.get("detail") or "")
    return plain(detail.removeprefix(f"{item.get('account')}: "))


PROBLEM_STATUSES = {"failed", "unverified", "waiting", "halted", "running"}


def problem_lines(outcomes: list[dict[str, Any]]) -> list[str]:
    """One line per action that did not end verified: system, account, action, reason in words."""
    lines = []
    for item in outcomes:
        if item["status"] not in PROBLEM_STATUSES:
            continue
        reason = (
            plain(item.get("error"))
            or read_back(item)
            or {
                "unverified": "the change could not be confirmed by reading the system back",
                "waiting": "waiting to be retried",
                "halted": "halted by a guard",
                "running": "did not finish",
            }.get(item["status"], "no reason given")
        )
        lines.append(f"{item['system']} {item['account']} {item['kind']}: {item['status']}, {reason}")
    return lines


def case_problems(result: Any) -> list[str]:
    """Every problem of a case, one line each: systems whose accounts could not be discovered, then actions."""
    lines = []
    for line in (result.detail or "").splitlines():
        system, sep, error = line.partition(": discovery failed: ")
        if sep:
            lines.append(f"{system}: could not look for accounts, {plain(error)}")
    return lines + problem_lines(result.outcomes)


def summary_line(result: Any) -> str:
    """One line: the case, its status, and how many actions need attention."""
    total = len(result.outcomes)
    verified = sum(o["status"] == "verified" for o in result.outcomes)
    problems = len(case_problems(result))
    line = f"Case {result.case_id} {result.status.value}: {verified} of {total} action(s) verified"
    if problems:
        line += f", {problems} problem(s) listed above (`offboard status {result.case_id}` shows them again)"
    return line


class DiscoverySpinner:
    """A spinner per system while the person's accounts are discovered; on a terminal only."""

    def __init__(self, console: Any, live: bool):
        self.console = console
        self.live = live
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()

    def attach(self, engine: Any) -> DiscoverySpinner:
        if self.live:
            engine.on_discovering = self.start
            engine.on_discovered = self.done
        return self

    def start(self, systems: list[str]) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn

        with self._lock:
            self.stop()
            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓[/]"),
                TextColumn("{task.description:<16}"),
                TextColumn("{task.fields[note]}"),
                console=self.console,
                transient=True,
            )
            self._tasks = {s: self._progress.add_task(s, total=1, note="looking for accounts") for s in systems}
            self._progress.start()

    def done(self, system: str, found: int, error: str | None) -> None:
        with self._lock:
            if self._progress is None or system not in self._tasks:
                return
            note = f"[red]{plain(error)}[/]" if error else f"{found} account(s)"
            self._progress.update(self._tasks[system], completed=1, note=note)
            if self._progress.finished:
                self.stop()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> DiscoverySpinner:
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.stop()
