"""One audit log for many workers: PostgreSQL sequences the entries, each data directory mirrors them.

With ``execution: distributed`` every worker process (on any machine) appends through
``audit_entries``: under a transaction-scoped advisory lock it catches up the entries other
processes added, computes its canonical lines exactly as a single process would (``seq``,
``person_prev``), inserts them with gapless ``seq`` and commits. Checkpoints are signed under
the same lock, so one process signs at a time and always over the whole table so far; each note
is kept in ``audit_checkpoints``. When it signs (and when it closes) the process copies what its
data directory lacks into the ordinary file log there, so ``offboard audit verify`` works
unchanged; appends themselves touch only the database, which keeps them short.

The SQL lives with the rest of the state (``offboard.state._audit_rows``): this module talks to
the ``rows`` object it is given (``store.audit_rows()``), whose ``locked()`` is one transaction
under a PostgreSQL advisory lock and whose ``reading()`` reads without it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from ..errors import StoreError
from ._entry import EntryError, strict_parse
from ._log import (
    CHECKPOINTS,
    LATEST,
    LEAF_HASHES,
    SEQUENCER,
    AuditError,
    AuditLog,
    FileStore,
    _write_atomic,
    checkpoint_name,
)
from ._merkle import CompactRange, leaf_hash
from ._witness import Superseded, ask_witnesses, keep_cosignatures

__all__ = ["DatabaseStore", "sync_mirror", "use_database"]

log = structlog.get_logger("offboard.audit")

#: Entries are mirrored to the data directory when a checkpoint is signed, or after this many.
MIRROR_EVERY = 5000


def use_database(audit: AuditLog, rows: Any) -> AuditLog:
    """Sequence ``audit``'s entries through PostgreSQL from now on; its directory becomes a mirror.

    The first process to attach an existing file log to an empty table uploads it; later
    ones check that their directory holds a prefix of the table and catch up. ``rows`` reaches
    the tables (``store.audit_rows()``).
    """
    if rows.dialect != "postgresql":
        raise AuditError(f"the shared audit log needs PostgreSQL, not {rows.dialect}")
    if getattr(audit._store, "database", False):
        return audit
    files = audit._store
    assert isinstance(files, FileStore)
    store = DatabaseStore(files, rows, audit)
    with files.locked():
        marker = audit.directory / SEQUENCER
        if not marker.exists():
            _write_atomic(marker, b"database\n")
        audit.mirror = True
        audit._store = store
        try:
            with store.locked():
                store.reconcile()
                audit._catch_up()
                audit._adopt_signer()
                latest = audit._read_latest()
                if latest is not None and (audit._latest is None or latest.size > audit._latest.size):
                    audit._latest = latest
                if audit._latest is None or audit._latest.size < audit.size:
                    audit._seal()
            store._mirror()
        except BaseException:
            audit._store = files
            raise
    store.ask_witnesses()
    return audit


class DatabaseStore:
    """The sequencer for a shared log: ``audit_entries`` in PostgreSQL, mirrored to a ``FileStore``."""

    database = True

    def __init__(self, files: FileStore, rows: Any, audit: AuditLog):
        self.files, self.rows, self.audit = files, rows, audit
        self.directory, self.path = files.directory, files.path
        self.size = files.size  # entries this process has taken in (its Merkle state)
        self._lock = threading.RLock()
        self._depth = 0
        self._tables: Any = None  # the locked transaction's tables
        self._pending: dict[int, bytes] = {}  # seq -> line, to mirror once committed
        self._after: list[tuple[int, Callable[[], None]]] = []  # checkpoint files, after the lines they cover
        self._published = 0  # largest checkpoint size whose files this process wrote or saw
        self._witness_due: list[tuple[int, str]] = []  # (size, note) signed here, for audit.witnesses

    @property
    def offset(self) -> int:
        return self.files.offset

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log: the database lock, in one transaction (the directory is locked only to mirror)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                with self.rows.locked() as tables:
                    self._tables = tables
                    yield
            except BaseException:
                self._pending.clear()
                self._after.clear()
                self._witness_due.clear()
                with self.files.locked():
                    self._reload()  # nothing was committed: forget what this scope took in
                raise
            finally:
                self._tables = None
                self._depth = 0
            if self._after or len(self._pending) >= MIRROR_EVERY:
                with self.files.locked():
                    self._mirror()
            self.ask_witnesses()

    def _held_tables(self) -> Any:
        if self._tables is None:
            raise AuditError("the audit log's database lock is not held")
        return self._tables

    def read_new(self) -> tuple[list[bytes], bytes]:
        """Entries other processes committed since this one last caught up."""
        rows = self._held_tables().entries(self.size)
        for i, (seq, _) in enumerate(rows):
            if seq != self.size + i:
                raise AuditError(f"audit_entries has no entry {self.size + i} (next is {seq}): the table was altered")
        return [line for _, line in rows], b""

    def advance(self, lines: list[bytes]) -> None:
        """Account for lines taken in (they are mirrored after the commit)."""
        for i, line in enumerate(lines):
            self._pending[self.size + i] = line
        self.size += len(lines)

    def write(self, lines: list[bytes]) -> None:
        """Insert lines at the next ``seq`` numbers (the primary key refuses a duplicate)."""
        self._held_tables().insert(self.size, lines)
        self.advance(lines)

    def publish(self, size: int, note: str, write: Callable[[], None]) -> None:
        """Keep a signed checkpoint in the table; its files follow the mirrored lines."""
        self._held_tables().add_checkpoint(size, note)
        self._after.append((size, write))
        if self.audit.witnesses:
            self._witness_due.append((size, note))
        self._published = max(self._published, size)

    def latest_note(self) -> bytes | None:
        """The newest checkpoint any process signed."""
        latest = self._held_tables().latest_checkpoint()
        return latest[1].encode() if latest is not None else None

    def reconcile(self) -> None:
        """Check this directory against the table; upload it into an empty table or extend the table with it."""
        tables, audit = self._held_tables(), self.audit
        count = tables.count()
        first = tables.line(0)
        if first is not None:
            try:
                origin = strict_parse(first).get("log")
            except EntryError:
                origin = None
            if origin != audit.origin:
                raise AuditError(
                    f"the database's audit log is {origin!r} but this process's is {audit.origin!r}: every worker must "
                    "use the same audit origin and signing key (copy the audit directory's origin, signing.key and "
                    "trusted-keys.txt to each machine, or use a checkpoint_signer plugin)"
                )
        local = self.files.size
        if local == 0:
            return
        lines = _file_lines(self.files)
        shared = min(local, count)
        if shared:
            if tables.line(shared - 1) != lines[shared - 1]:
                raise AuditError(
                    f"the audit log in {self.directory} and the one in the database differ at entry {shared - 1}: "
                    f"they are different logs. Move {self.directory} aside; it is rebuilt from the database"
                )
        if local > count:  # this directory is ahead: its entries continue the table's
            tables.insert(count, lines[count:local])
            log.info("audit entries uploaded to the database", first=count, entries=local - count)

    def ask_witnesses(self) -> None:
        """Send the checkpoints this process signed (committed, mirrored) to ``audit.witnesses``, outside
        every lock; keep their cosignatures in ``audit_checkpoints`` for every worker's mirror.

        Workers sign in turn under the database lock but reach the witnesses in any order: a witness that
        has already cosigned a larger checkpoint of this log (one in ``audit_checkpoints``; it checked that
        one's consistency) has vouched for this one's entries too, so that refusal is no failure."""
        due, self._witness_due = self._witness_due, []
        failures: list[str] = []
        for size, note in due:
            if size > self.files.size:  # not mirrored yet (the mirror failed): the next mirror's signer asks
                failures.append(f"checkpoint {size} is not in {self.directory} yet; its witnesses were not asked")
                continue
            lines, refusals = ask_witnesses(self.directory, note, size, self.audit.witnesses)
            for refusal in refusals:
                if isinstance(refusal, Superseded) and self._signed(refusal.size):
                    continue
                failures.append(str(refusal))
            if lines:
                try:
                    self.rows.add_cosignatures(size, lines)
                except (StoreError, OSError) as exc:
                    failures.append(f"cosignatures of checkpoint {size} not kept in the database: {exc}")
                keep_cosignatures(self.directory, size, lines)
        if due:
            self.audit.witness_failures = failures
            for failure in failures:
                log.warning("audit witness did not cosign", error=failure)

    def _signed(self, size: int) -> bool:
        """Whether the shared log has a checkpoint of exactly ``size``."""
        with self.rows.reading() as tables:
            found = tables.latest_checkpoint(at_most=size)
        return found is not None and found[0] == size

    def _reload(self) -> None:
        """Rebuild this process's view from the mirror after a rolled-back scope."""
        audit, files = self.audit, self.files
        files.size = files.offset = 0
        audit._range = CompactRange()
        audit._persons = {}
        audit._store = files
        try:
            audit._load()
        except AuditError as exc:
            log.warning("could not reload the audit log after a failed write", error=str(exc))
        finally:
            audit._store = self
            self.size = files.size

    def _mirror(self) -> None:
        """Copy committed entries, then the checkpoints over them, into the directory's file log."""
        after, self._after = self._after, []
        try:
            sync_mirror(self.files, self.rows, self._pending, after)
        except (OSError, StoreError) as exc:  # the table has them; the next commit or sync retries
            log.warning("audit mirror not brought up to date", directory=str(self.directory), error=str(exc))
        finally:
            self._pending.clear()

    def close(self) -> None:
        """Bring the mirror up to date and release the files."""
        try:
            with self._lock, self.files.locked():
                sync_mirror(self.files, self.rows)
        except (OSError, StoreError) as exc:
            log.warning("audit mirror not brought up to date", directory=str(self.directory), error=str(exc))
        self.files.close()


def _file_lines(files: FileStore) -> list[bytes]:
    with open(files.path, "rb") as f:
        data = f.read(files.offset)
    return data.split(b"\n")[:-1]


def sync_mirror(
    files: FileStore,
    rows: Any,
    known: dict[int, bytes] | None = None,
    after: Iterable[tuple[int, Callable[[], None]]] = (),
) -> int:
    """Append to the file log what the table has beyond it, then the newest checkpoint it covers.

    Call with ``files`` locked. ``known`` holds lines already at hand by ``seq``; ``after`` writes
    checkpoint files once the lines are in. Returns the number of entries in the file afterwards.
    """
    known = known or {}
    new, torn = files.read_new()  # other processes sharing this directory may have mirrored more
    files.advance(new)
    if torn:
        files.truncate_tail()
    _repair_hashes(files, new)
    start = files.size
    lines: list[bytes] = []
    while start + len(lines) in known:
        lines.append(known[start + len(lines)])
    with rows.reading() as tables:
        for seq, line in tables.entries(start + len(lines)):
            if seq != start + len(lines):
                break
            lines.append(line)
        if lines:
            files.write(lines)
        for size, write in after:
            if size <= files.size:
                write()
        newest = tables.latest_checkpoint(at_most=files.size)
        cosigned = tables.cosignatures(newest[0]) if newest is not None else ""
    if newest is not None:
        size, note = newest
        folder = files.directory / CHECKPOINTS
        folder.mkdir(exist_ok=True)
        history = folder / checkpoint_name(size)
        if not history.exists():
            _write_atomic(history, note.encode())
        if _latest_size(folder / LATEST) < size:
            _write_atomic(folder / LATEST, note.encode())
        if cosigned:  # the witnesses' cosignatures, whichever worker asked them
            keep_cosignatures(files.directory, size, cosigned.splitlines(keepends=True))
    return files.size


def _latest_size(path: Any) -> int:
    try:
        return int(path.read_text().split("\n")[1])
    except (OSError, IndexError, ValueError, UnicodeDecodeError):
        return -1


def _repair_hashes(files: FileStore, recent: list[bytes]) -> None:
    """Make ``leafhashes.bin`` cover exactly the file's lines (a process may have died between the two writes)."""
    path = files.directory / LEAF_HASHES
    have, want = os.path.getsize(path) // 32, files.size
    if os.path.getsize(path) == want * 32:
        return
    first_recent = files.size - len(recent)
    if first_recent <= have <= want:
        with open(path, "r+b") as f:
            f.truncate(have * 32)
        os.write(files._hash_fd, b"".join(leaf_hash(line) for line in recent[have - first_recent :]))
    else:
        files.reset_hashes(b"".join(leaf_hash(line) for line in _file_lines(files)))
