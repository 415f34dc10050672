"""Every error offboard raises is defined in offboard.errors, under OffboardError."""

from __future__ import annotations

import inspect

import offboard.errors
from offboard.audit import AuditError, EntryError, NoteError
from offboard.audit._report import ReportError
from offboard.checklist._notifiers import NotifyError
from offboard.checklist._tasks import TaskError
from offboard.intake._hr_adapters import WebhookRejected
from offboard.inventory._sweep import ApprovalRequired


def test_one_tree():
    for name in offboard.errors.__all__:
        cls = getattr(offboard.errors, name)
        assert issubclass(cls, offboard.errors.OffboardError) and cls.__module__ == "offboard.errors"
        assert f" {name}\n" in offboard.errors.__doc__ or f" {name} " in offboard.errors.__doc__, (
            f"{name} is missing from the tree in the docstring"
        )
    defined = {n for n, c in inspect.getmembers(offboard.errors, inspect.isclass) if issubclass(c, Exception)}
    assert defined == set(offboard.errors.__all__)


def test_the_old_homes_still_import_the_same_classes():
    for cls in (
        AuditError,
        EntryError,
        NoteError,
        ReportError,
        NotifyError,
        TaskError,
        WebhookRejected,
        ApprovalRequired,
    ):
        assert getattr(offboard.errors, cls.__name__) is cls


def test_attributes_and_second_bases_are_kept():
    assert issubclass(EntryError, ValueError) and issubclass(NoteError, ValueError)
    assert ReportError("no log").code == 2 and ReportError("tampered", 1).code == 1
    rejected = WebhookRejected(413, "body_too_large", "too big")
    assert (rejected.status, rejected.to_dict()) == (413, {"error": "body_too_large", "message": "too big"})
