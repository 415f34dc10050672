"""Connector-contributed checklist tasks: steps a system has no API for (``Connector.manual_tasks``).

They join the policy's own tasks for this one plan, so ``plan`` shows them, the case stores them and
they are due, owned and blocking like any policy task (docs/checklists.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..config._policy import Policy, TaskRule
from ..errors import ConfigError
from ..models import Action, Person

__all__ = ["with_manual_tasks"]


def with_manual_tasks(policy: Policy, actions: list[Action], person: Person, connector: Callable[[str], Any]) -> Policy:
    """``policy`` with the manual tasks the connectors of ``actions`` ask for (the same policy when none do).

    Each connector sees the whole plan (every system's actions), so it can tell a handover policy from
    a plain disable; its tasks are named after its instance."""
    taken = {t.id for t in policy.tasks}
    extra: list[TaskRule] = []
    for system in sorted({a.account.system for a in actions}):
        for task in connector(system).manual_tasks(list(actions), person):
            task_id = f"{system}-{task.id}"[:64]
            if task_id in taken:
                continue
            try:
                extra.append(
                    TaskRule(id=task_id, title=task.title[:300], owner=task.owner, due=task.due, blocking=task.blocking)
                )
            except ValidationError as exc:
                raise ConfigError(f"connector {system}: manual task {task.id!r} is not a valid task: {exc}") from None
            taken.add(task_id)
    return policy.model_copy(update={"tasks": [*policy.tasks, *extra]}) if extra else policy
