"""What a ``case_closed`` hook is told: the closed case, and a way to send a notice about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .models import Person
from .notifiers import Notice

__all__ = ["CaseClosed"]


def _nobody(notice: Notice) -> list[str]:
    return []


@dataclass(frozen=True)
class CaseClosed:
    """A case that has just closed. ``notify(notice)`` sends a notice through the configured notifiers
    that take ``case_closed`` events and returns who received it; failed deliveries are logged, never raised."""

    id: str
    person: Person
    status: str  # complete, incomplete or awaiting_tasks
    trigger: str  # what opened the case: cli, webhook, sweep, followup, ...
    policy: str  # the policy's name
    reason: str = ""  # why the case was opened, as given
    summary: tuple[str, ...] = ()  # what kept it from completing, one line each; empty when complete
    notify: Callable[[Notice], list[str]] = field(default=_nobody, repr=False, compare=False)
