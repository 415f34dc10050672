"""The writer's refusal to sign over history it cannot prove.

Before the log signs a checkpoint it checks its entries against every checkpoint it has signed:
the history files in ``checkpoints/``, ``latest.note``, and the record of every seal kept outside
the log's directory (``audit_seals`` in the state store, reached through a ``SealBook``). A
missing or older ``latest.note``, a missing history file, a checkpoint covering more entries than
the log has, or any root that no longer matches the entries stops sealing with an ``AuditError``
naming what is wrong. Whoever can write the directory can still delete it all, but cannot make
the writer put the log's signature on edited entries, and ``verify`` reports a non-empty log
without a checkpoint as an integrity failure.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from ..errors import AuditError, OffboardError
from ._note import Checkpoint, NoteError, TrustList, parse_checkpoint

__all__ = ["SealBook", "HISTORY_RE", "read_history", "history_problems", "refuse", "book_seals", "book_record"]

HISTORY_RE = re.compile(r"[0-9]{20}\.note\Z")


class SealBook(Protocol):
    """Where the writer records each checkpoint it signs (``store.audit_seals``)."""

    def record(self, origin: str, size: int, root: bytes, note: str) -> None: ...

    def seals(self, origin: str, low: int = 0, high: int | None = None) -> dict[int, bytes]: ...


def read_history(
    folder: Path, trust: TrustList, origin: str, low: int = 0, high: int | None = None
) -> dict[int, Checkpoint]:
    """The history files ``<size:020d>.note`` with ``low <= size <= high``, each verified."""
    out: dict[int, Checkpoint] = {}
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return out
    for name in names:
        if not HISTORY_RE.match(name):
            continue
        size = int(name[:20])
        if size < low or (high is not None and size > high):
            continue
        try:
            cp = parse_checkpoint((folder / name).read_bytes(), trust, origin)
        except NoteError as exc:
            raise AuditError(f"refusing to sign: {folder.name}/{name}: {exc}; run 'offboard audit verify'") from None
        except OSError as exc:
            raise AuditError(f"refusing to sign: cannot read {folder.name}/{name}: {exc}") from None
        if cp.size != size:
            raise AuditError(f"refusing to sign: {folder.name}/{name} says size {cp.size}; run 'offboard audit verify'")
        out[size] = cp
    return out


def history_problems(
    n: int,
    roots: dict[int, bytes],
    history: dict[int, Checkpoint],
    seals: dict[int, bytes],
    latest: Checkpoint | None,
    *,
    mirror: bool = False,
    files: bool = True,
) -> list[str]:
    """What stops the writer from signing: ``roots`` holds the entries' root at each size asked about.

    ``files`` says whether ``history`` and ``latest`` were read (the full check when the log is
    opened, or the sizes new since the last seal); ``mirror`` relaxes the rules a database mirror
    cannot keep (it copies only the newest checkpoint and may lag the shared seals).
    """
    out: list[str] = []
    for size in sorted(history):
        name = f"checkpoints/{size:020d}.note"
        if size > n:
            out.append(f"{name} covers {size} entries but the log has only {n} (entries were truncated or deleted)")
        elif roots.get(size) != history[size].root:
            out.append(f"the first {size} entries no longer match {name} (entries were changed)")
    for size in sorted(seals):
        what = f"the checkpoint signed at size {size} (recorded in the state store's audit_seals)"
        if size > n:
            if not mirror:
                out.append(f"{what} covers more entries than the log's {n} (entries were truncated or deleted)")
            continue
        if roots.get(size) != seals[size]:
            out.append(f"the first {size} entries no longer match {what}: entries were changed")
        elif not mirror and size not in history:
            out.append(f"checkpoints/{size:020d}.note is missing: {what} was deleted")
    if not files:
        return out
    newest = max([*history, *(s for s in seals if s <= n or not mirror)], default=None)
    if latest is None:
        if newest is not None:
            out.append(f"checkpoints/latest.note is missing (the newest checkpoint has size {newest})")
        elif n and not mirror:
            out.append(f"the log has {n} entries but no checkpoint at all (every checkpoint was deleted)")
        return out
    if newest is not None and latest.size < newest:
        out.append(f"checkpoints/latest.note (size {latest.size}) is older than the checkpoint of size {newest}")
    if latest.size > n:
        out.append(
            f"checkpoints/latest.note covers {latest.size} entries but the log has only {n} "
            "(the log was truncated; restore it from a backup)"
        )
    elif roots.get(latest.size) != latest.root:
        out.append(f"the first {latest.size} entries no longer match checkpoints/latest.note (entries were changed)")
    elif not mirror and latest.size not in history:
        out.append(f"checkpoints/{latest.size:020d}.note, the history file of latest.note, is missing")
    return out


def refuse(problems: list[str]) -> AuditError:
    """The error that stops sealing."""
    return AuditError(
        "refusing to sign a checkpoint over history it cannot prove: "
        + "; ".join(problems)
        + ". Run 'offboard audit verify' and restore the log from a backup"
    )


def book_seals(book: SealBook | None, origin: str, low: int = 0, high: int | None = None) -> dict[int, bytes]:
    """The recorded seals (none without a book); a failing store stops sealing."""
    if book is None:
        return {}
    try:
        return book.seals(origin, low, high)
    except OffboardError as exc:
        raise AuditError(f"refusing to sign: the record of signed checkpoints cannot be read: {exc}") from None


def book_record(book: SealBook | None, origin: str, cp: Checkpoint) -> None:
    """Record a signed checkpoint outside the log's directory."""
    if book is None:
        return
    try:
        book.record(origin, cp.size, cp.root, cp.note)
    except OffboardError as exc:
        raise AuditError(f"the checkpoint at size {cp.size} was signed but not recorded: {exc}") from None
