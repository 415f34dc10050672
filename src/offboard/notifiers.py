"""Notifiers: how offboard tells people things (a case summary, an end date, a task due).

A notifier is a :class:`Notifier` subclass with a ``name``, a pydantic ``Settings`` model and
``send(notice)``, registered through the ``register_notifiers`` hook. The configuration's
``notifiers:`` section names instances, each with its ``type``, ``settings`` and ``events``.
A notifier raises :class:`~offboard.errors.NotifyError` when it cannot deliver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .errors import NotifyError

__all__ = ["Notice", "Notifier", "NotifyError"]


@dataclass(frozen=True)
class Notice:
    """One message. ``to`` holds email addresses; empty means the notifier's IT destination."""

    kind: str  # case_closed, end_date, task_due, task_overdue, owed or residual
    subject: str
    text: str
    to: tuple[str, ...] = ()


class Notifier:
    """Base class for notifiers: set ``name`` and ``Settings``, and implement ``send()``."""

    name: ClassVar[str] = ""

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")

    #: The validated ``Settings``; a subclass re-declares it (``settings: Settings``) for its own fields.
    settings: BaseModel

    def __init__(self, instance: str, settings: BaseModel | dict[str, Any] | None = None):
        self.instance = instance
        self.settings = (
            settings if isinstance(settings, self.Settings) else self.Settings.model_validate(settings or {})
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.instance!r}>"

    def send(self, notice: Notice) -> list[str]:
        """Deliver ``notice``; return who received it."""
        raise NotImplementedError
