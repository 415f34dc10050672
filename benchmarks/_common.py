"""Helpers shared by the benchmark scenarios: timing and the result table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.table import Table

console = Console()


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def median(values: list[float]) -> float:
    return statistics.median(values)


def report(title: str, rows: list[tuple[str, str, str, str]]) -> None:
    """Print rows of (measure, value, goal, verdict)."""
    table = Table(title=title, title_justify="left")
    for column in ("measure", "value", "goal", ""):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"
