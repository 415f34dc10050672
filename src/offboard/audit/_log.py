"""The audit log writer: append entries, seal checkpoints, recover from a crash."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AuditError
from ._entry import FORMAT_VERSION, EntryError, canonical, check_fields, checked_entry, now
from ._history import SealBook, book_record, book_seals, history_problems, read_history, refuse
from ._index import update_index
from ._merkle import CompactRange, leaf_hash
from ._note import (
    Checkpoint,
    NoteError,
    Signer,
    TrustedKey,
    TrustList,
    Verifier,
    checkpoint_text,
    generate_skey,
    parse_checkpoint,
    sign_note,
    valid_name,
)
from ._signer import FileSigner, resolve_signer, write_private
from ._witness import collect_cosignatures

if TYPE_CHECKING:
    from ._database import DatabaseStore

__all__ = ["AuditError", "AuditLog", "FileStore", "read_origin", "ENTRIES", "LEAF_HASHES", "SEQUENCER"]

ENTRIES = "entries.jsonl"
LEAF_HASHES = "leafhashes.bin"
CHECKPOINTS = "checkpoints"
LATEST = "latest.note"
TRUSTED_KEYS = "trusted-keys.txt"
KEY_FILE = "signing.key"
ORIGIN_FILE = "origin"
PERSONS_CACHE = "persons.json"
#: Present (containing "database") when a database sequences the entries and this directory mirrors them.
SEQUENCER = "sequencer"


def read_origin(directory: Path) -> str:
    """The origin recorded when the log was created."""
    path = Path(directory) / ORIGIN_FILE
    try:
        origin = path.read_text().strip()
    except FileNotFoundError:
        raise AuditError(f"{directory} is not an audit log (no {ORIGIN_FILE} file)") from None
    if not valid_name(origin):
        raise AuditError(f"{path}: {origin!r} is not a valid origin")
    return origin


def checkpoint_name(size: int) -> str:
    """The history file name of a checkpoint."""
    return f"{size:020d}.note"


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class FileStore:
    """The sequencer: the one place that assigns ``seq`` and appends lines, under a thread lock and an flock."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / ENTRIES
        self._hashes_path = directory / LEAF_HASHES
        self._lock = threading.RLock()
        self._depth = 0
        self._lock_fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._hash_fd = os.open(self._hashes_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.size = 0
        self.offset = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log for writing (re-entrant within a thread)."""
        with self._lock:
            if self._depth == 0:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def read_new(self) -> tuple[list[bytes], bytes]:
        """Complete lines written since ``offset`` (by any process), and a torn tail if any."""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        lines = data[:end].split(b"\n")[:-1] if end else []
        return lines, data[end:]

    def advance(self, lines: list[bytes]) -> None:
        """Account for lines already on disk."""
        self.size += len(lines)
        self.offset += sum(len(line) + 1 for line in lines)

    def truncate_tail(self) -> None:
        """Cut the file back to ``offset`` (after a torn tail has been quarantined)."""
        os.truncate(self.path, self.offset)
        os.fsync(self._fd)

    def write(self, lines: list[bytes]) -> None:
        """Append lines, fsync, then extend the leaf-hash cache."""
        data = memoryview(b"".join(line + b"\n" for line in lines))
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        os.fsync(self._fd)
        self.advance(lines)
        os.write(self._hash_fd, b"".join(leaf_hash(line) for line in lines))

    def publish(self, size: int, note: str, write: Any) -> None:
        """A checkpoint was signed: write its files now."""
        write()

    def latest_note(self) -> bytes | None:
        """The newest stored checkpoint note."""
        try:
            return (self.directory / CHECKPOINTS / LATEST).read_bytes()
        except FileNotFoundError:
            return None

    def reset_hashes(self, hashes: bytes) -> None:
        """Rewrite the leaf-hash cache."""
        _write_atomic(self._hashes_path, hashes, 0o600)
        os.close(self._hash_fd)
        self._hash_fd = os.open(self._hashes_path, os.O_WRONLY | os.O_APPEND)

    def close(self) -> None:
        """Release the files."""
        for fd in (self._fd, self._hash_fd, self._lock_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class AuditLog:
    """An append-only, signed audit log in a directory.

    Entries are canonical JSON lines whose leaf hashes form an RFC 6962 Merkle tree;
    ``checkpoint()`` signs the tree head as a C2SP tlog-checkpoint.
    """

    def __init__(self, directory: Path, origin: str, signer: Signer, store: FileStore):
        self.directory = directory
        self.origin = origin
        self.signer = signer
        self._store: FileStore | DatabaseStore = store  # a DatabaseStore once use_database() shares the log
        self._range = CompactRange()
        self._persons: dict[str, int] = {}
        self._latest: Checkpoint | None = None
        self.trust = TrustList()
        self.recovered: list[int] = []
        #: Where each signed checkpoint is also recorded, outside this directory (``store.audit_seals``).
        self.seals: SealBook | None = None
        self.witnesses: list[Any] = []  # audit.witnesses: [{"url": ..., "key": vkey}]
        self.witness_failures: list[str] = []
        self._checked = CompactRange()  # the tree at the size up to which history was last checked
        self._unchecked: list[bytes] = []  # leaf hashes after it
        #: This directory mirrors a log sequenced by a database (see ``offboard.audit.use_database``).
        self.mirror = (directory / SEQUENCER).exists()

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        directory: Path,
        origin: str,
        *,
        signer: Signer | None = None,
        config: Any = None,
        pm: Any = None,
        seals: SealBook | None = None,
        witnesses: list[Any] | None = None,
    ) -> AuditLog:
        """Open (or create) the log, recover a torn last line, and seal unsealed entries.

        ``seals`` (the state store's ``audit_seals``) records every checkpoint signed; the log
        refuses to sign when its entries no longer match one of them or its checkpoint files."""
        directory = Path(directory)
        if not valid_name(origin) or "#" in origin:  # '#' starts a comment in trusted-keys.txt
            raise AuditError(f"the audit origin {origin!r} must be non-empty with no spaces, '+' or '#'")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        (directory / CHECKPOINTS).mkdir(exist_ok=True)
        origin_file = directory / ORIGIN_FILE
        if origin_file.exists():
            recorded = read_origin(directory)
            if recorded != origin:
                raise AuditError(f"the audit log in {directory} has origin {recorded!r}, not {origin!r}")
        else:
            _write_atomic(origin_file, origin.encode() + b"\n")
        try:
            if signer is None:
                signer = resolve_signer(config, directory.parent, directory / KEY_FILE, origin, pm)
            else:
                Verifier.parse(signer.vkey)
        except NoteError as exc:
            raise AuditError(f"audit signing key: {exc}") from None
        log = cls(directory, origin, signer, FileStore(directory))
        log.seals, log.witnesses = seals, list(witnesses or [])
        try:
            with log._store.locked():
                log._load()
                if not log.mirror:  # a mirror signs and appends only once its database is attached
                    log._adopt_signer()
                    if log._latest is None or log._latest.size < log.size:
                        log._seal()
        except BaseException:
            log.close()
            raise
        return log

    def _load(self) -> None:
        store = self._store
        assert isinstance(store, FileStore)  # loaded from the files; a database takes over later
        self.trust = self._read_trust()
        lines, torn = store.read_new()
        hashes = [leaf_hash(line) for line in lines]
        cache = self.directory / LEAF_HASHES
        joined = b"".join(hashes)
        if cache.read_bytes() != joined:
            store.reset_hashes(joined)
        start, persons = 0, {}
        try:
            cached = json.loads((self.directory / PERSONS_CACHE).read_text())
            if cached.get("origin") == self.origin and 0 <= cached.get("size", -1) <= len(lines):
                start, persons = cached["size"], dict(cached["persons"])
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass
        self._latest = self._read_latest()
        latest_size = self._latest.size if self._latest else 0
        history = {} if self.mirror else read_history(self.directory / CHECKPOINTS, self.trust, self.origin)
        seals = book_seals(self.seals, self.origin)
        wanted = set(history) | set(seals) | {latest_size}
        roots: dict[int, bytes] = {}
        self._persons = persons
        for index, line in enumerate(lines):
            if index in wanted:
                roots[index] = self._range.root()
            self._range.append(hashes[index])
            if index >= min(start, latest_size):
                self._apply(self._parse(line, index), index, index >= start)
        roots[len(lines)] = self._range.root()
        problems = history_problems(len(lines), roots, history, seals, self._latest, mirror=self.mirror)
        if problems:
            raise refuse(problems)
        self._checked, self._unchecked = self._range.copy(), []
        store.advance(lines)
        if torn and self.mirror:
            store.truncate_tail()  # a line cut short while mirroring: the database has it whole
        elif torn:
            self._quarantine(torn)

    def _parse(self, line: bytes, index: int) -> dict[str, Any]:
        try:
            obj = checked_entry(line, index, self.origin)
        except EntryError as exc:
            raise AuditError(f"{self._store.path} line {index + 1}: {exc}; run 'offboard audit verify'") from None
        return obj

    def _apply(self, obj: dict[str, Any], index: int, index_person: bool = True) -> None:
        person = obj.get("person")
        if index_person and isinstance(person, dict) and isinstance(person.get("id"), str):
            self._persons[person["id"]] = index
        if obj.get("type") == "key_rotation" and isinstance(self.signer, FileSigner):
            if obj.get("new") not in (None, self.signer.vkey):  # rotated by another process
                self.signer = FileSigner(self.signer.path, self.origin, create=False)
                self.trust = self._read_trust()

    def _read_trust(self) -> TrustList:
        path = self.directory / TRUSTED_KEYS
        try:
            return TrustList.parse(path.read_text(), str(path))
        except FileNotFoundError:
            return TrustList()
        except NoteError as exc:
            raise AuditError(str(exc)) from None

    def _write_trust(self) -> None:
        header = (
            f"# Keys trusted to sign checkpoints of the audit log {self.origin}.\n"
            "# Pin a copy out of band; verify with: offboard audit verify --trusted-keys FILE\n"
        )
        _write_atomic(self.directory / TRUSTED_KEYS, (header + self.trust.text()).encode())

    def _read_latest(self) -> Checkpoint | None:
        data = self._store.latest_note()
        if data is None:
            return None
        if self._latest is not None and data == self._latest.note.encode():
            return self._latest  # the note this process verified or signed: no second signature check
        try:
            return parse_checkpoint(data, self.trust, self.origin)
        except NoteError as exc:
            where = "the database's latest checkpoint" if self.mirror else self.directory / CHECKPOINTS / LATEST
            raise AuditError(f"{where}: {exc}; run 'offboard audit verify'") from None

    def _adopt_signer(self) -> None:
        vkey = self.signer.vkey
        if self.trust.find(vkey):
            return
        verifier = Verifier.parse(vkey)
        if not self.trust.keys:
            self.trust.keys.append(TrustedKey(verifier, 0))
            self._write_trust()
            return
        old = [k for k in self.trust.keys if k.valid_to_size is None]
        last = self._latest.size if self._latest else 0
        seq = self._append_locked(
            [
                (
                    "key_rotation",
                    {
                        "old": [k.verifier.vkey for k in old],
                        "new": vkey,
                        "reason": "the checkpoint signer changed",
                        "approver": None,
                    },
                )
            ]
        )[0]
        self.trust.keys = [
            TrustedKey(k.verifier, k.valid_from_size, last, "retired") if k in old else k for k in self.trust.keys
        ] + [TrustedKey(verifier, seq + 1)]
        self._write_trust()

    def _quarantine(self, torn: bytes) -> None:
        store = self._store
        assert isinstance(store, FileStore)  # only the file log can have a torn line
        qdir = self.directory / "quarantine"
        qdir.mkdir(exist_ok=True, mode=0o700)
        name = f"{store.offset:020d}-{int(time.time())}.torn"
        _write_atomic(qdir / name, torn, 0o600)
        store.truncate_tail()
        seq = self._append_locked(
            [
                (
                    "recovery",
                    {
                        "reason": "torn last line (no newline) after a crash",
                        "quarantined": f"quarantine/{name}",
                        "offset": store.offset,
                        "bytes": len(torn),
                        "sha256": sha256(torn).hexdigest(),
                    },
                )
            ]
        )[0]
        self.recovered.append(seq)

    def _catch_up(self) -> None:
        lines, torn = self._store.read_new()
        for i, line in enumerate(lines):
            index = self._store.size + i
            obj = self._parse(line, index)
            h = leaf_hash(line)
            self._range.append(h)
            self._unchecked.append(h)
            self._apply(obj, index)
        self._store.advance(lines)
        if torn:
            self._quarantine(torn)

    # -- writing -------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Number of entries."""
        return self._store.size

    @property
    def latest(self) -> Checkpoint | None:
        """The latest checkpoint."""
        return self._latest

    def append(self, entry_type: str, fields: dict[str, Any]) -> int:
        """Append one entry (fsync'd); returns its ``seq``."""
        return self.append_many([(entry_type, fields)])[0]

    def append_many(self, entries: Iterable[tuple[str, dict[str, Any]]]) -> list[int]:
        """Append several entries with one fsync; returns their ``seq`` numbers."""
        entries = list(entries)
        for entry_type, fields in entries:
            check_fields(entry_type, fields)
        self._check_writable()
        with self._store.locked():
            self._catch_up()
            return self._append_locked(entries)

    def _append_locked(self, entries: list[tuple[str, dict[str, Any]]]) -> list[int]:
        lines: list[bytes] = []
        seqs: list[int] = []
        persons: dict[str, int] = {}
        for entry_type, fields in entries:
            seq = self._store.size + len(lines)
            entry = dict(fields)
            entry.update(v=FORMAT_VERSION, log=self.origin, seq=seq, time=now(), type=entry_type)
            person = fields.get("person")
            if isinstance(person, dict) and isinstance(person.get("id"), str):
                pid = person["id"]
                entry["person_prev"] = persons.get(pid, self._persons.get(pid))
                persons[pid] = seq
            try:
                lines.append(canonical(entry))
            except EntryError as exc:
                raise AuditError(f"cannot log {entry_type}: {exc}") from None
            seqs.append(seq)
        self._store.write(lines)
        for line in lines:
            h = leaf_hash(line)
            self._range.append(h)
            self._unchecked.append(h)
        self._persons.update(persons)
        return seqs

    def _check_writable(self) -> None:
        if self.mirror and not getattr(self._store, "database", False):
            raise AuditError(
                f"the audit log in {self.directory} mirrors a log kept in PostgreSQL (execution: distributed): "
                f"write to it through the engine, or remove {self.directory / SEQUENCER} to keep a local log again"
            )

    def checkpoint(self) -> str:
        """Sign and store a checkpoint for the current size; returns the latest note."""
        if self.mirror and not getattr(self._store, "database", False):
            latest = self._read_latest()  # a mirror without its database: nothing new to sign
            if latest is None:
                raise AuditError(f"the audit log mirror in {self.directory} has no checkpoint yet")
            return latest.note
        with self._store.locked():
            self._catch_up()
            on_disk = self._read_latest()
            if on_disk and (self._latest is None or on_disk.size > self._latest.size):
                self._latest = on_disk
            if self._latest is None or self._latest.size < self.size:
                self._seal()
            assert self._latest is not None
            return self._latest.note

    def _seal(self, signers: list[Signer] | None = None) -> None:
        size, root = self.size, self._range.root()
        database = getattr(self._store, "database", False)  # audit_checkpoints records its seals
        existing = None if database else self._check_history(size, root)
        if existing is not None and signers is None:  # already signed for this size: never a second note
            checkpoint, note = existing, existing.note
        else:
            try:
                note = sign_note(checkpoint_text(self.origin, size, root), signers or [self.signer])
                checkpoint = parse_checkpoint(note, self.trust, self.origin)
            except NoteError as exc:
                raise AuditError(f"cannot sign the checkpoint at size {size}: {exc}") from None
        self._latest = checkpoint
        persons = json.dumps({"origin": self.origin, "size": size, "persons": self._persons}).encode()
        self._store.publish(
            size,
            note,
            lambda: self.write_checkpoint(size, note, persons, replace=existing is not None, root=checkpoint.root),
        )
        if not database:
            book_record(self.seals, self.origin, checkpoint)
            if self.witnesses:  # independent cosigners: checkpoints/<size>.cosig (see _witness.py)
                self.witness_failures = collect_cosignatures(self.directory, note, size, self.witnesses)
        self._checked, self._unchecked = self._range.copy(), []

    def _check_history(self, size: int, root: bytes) -> Checkpoint | None:
        """Refuse to seal unless the entries since the last check match every checkpoint signed over them.

        Returns the checkpoint already stored for ``size`` (with this root), if there is one."""
        low = self._checked.size + 1
        folder = self.directory / CHECKPOINTS
        history = read_history(folder, self.trust, self.origin, low)
        seals = book_seals(self.seals, self.origin, low)
        latest = self._read_latest()
        wanted = set(history) | set(seals) | ({latest.size} if latest else set())
        tree, roots = self._checked.copy(), {}
        for h in self._unchecked:
            tree.append(h)
            if tree.size in wanted:
                roots[tree.size] = tree.root()
        problems = history_problems(size, roots, history, seals, None, mirror=self.mirror, files=False)
        known = self._latest
        if latest is None:
            if known is not None or history:
                problems.append("checkpoints/latest.note is missing")
        else:
            newest = max([*history, known.size if known else 0])
            if latest.size < newest:
                problems.append(
                    f"checkpoints/latest.note (size {latest.size}) is older than the checkpoint of size {newest}"
                )
            elif latest.size > size:
                problems.append(f"checkpoints/latest.note covers {latest.size} entries but the log has only {size}")
            elif latest.size >= low and roots.get(latest.size) != latest.root:
                problems.append(f"the first {latest.size} entries no longer match checkpoints/latest.note")
            elif known is not None and latest.size == known.size and latest.root != known.root:
                problems.append("checkpoints/latest.note was replaced by a different checkpoint of the same size")
            if not self.mirror and not (folder / checkpoint_name(latest.size)).exists():
                problems.append(
                    f"checkpoints/{checkpoint_name(latest.size)}, the history file of latest.note, is missing"
                )
        if problems:
            raise refuse(problems)
        existing = history.get(size)
        if existing is not None and existing.root != root:  # pragma: no cover - history_problems caught it
            raise refuse([f"checkpoints/{checkpoint_name(size)} holds a different root"])
        return existing

    def write_checkpoint(
        self, size: int, note: str, persons: bytes | None = None, *, replace: bool = False, root: bytes | None = None
    ) -> None:
        """Store a checkpoint's files: its history file, ``latest.note`` and the per-person index.

        A history file that exists is never overwritten (``replace`` says the note is the one in it)."""
        folder = self.directory / CHECKPOINTS
        history = folder / checkpoint_name(size)
        if not history.exists():
            _write_atomic(history, note.encode())
        elif not replace and history.read_bytes() != note.encode():
            raise AuditError(f"{history} already holds a different checkpoint for size {size}; not overwritten")
        _write_atomic(folder / LATEST, note.encode())
        if persons is not None:
            _write_atomic(self.directory / PERSONS_CACHE, persons, 0o600)
        try:  # the per-person index is advisory: evidence scans the log without it, verify reports it
            update_index(self.directory, self.origin, size, root)
        except OSError:
            pass

    def rotate_key(self, reason: str, approver: str | None = None) -> tuple[str, str]:
        """Replace the local signing key: log it, cross-sign a checkpoint with both keys, retire the old one."""
        if not isinstance(self.signer, FileSigner):
            raise AuditError("the checkpoint signer is a plugin (KMS/Vault): rotate the key there")
        self._check_writable()
        with self._store.locked():
            self._catch_up()
            old = self.signer
            key_path = old.path
            next_path = key_path.with_name(key_path.name + ".next")
            write_private(next_path, generate_skey(self.origin) + "\n")
            new = FileSigner(next_path, self.origin, create=False)
            seq = self._append_locked(
                [
                    (
                        "key_rotation",
                        {
                            "old": [old.vkey],
                            "new": new.vkey,
                            "reason": reason,
                            "approver": approver,
                        },
                    )
                ]
            )[0]
            size = seq + 1
            self.trust.keys = [
                TrustedKey(k.verifier, k.valid_from_size, size, "retired") if k.verifier.vkey == old.vkey else k
                for k in self.trust.keys
            ] + [TrustedKey(new.verifier, size)]
            self._write_trust()
            self._seal([old, new])
            os.replace(next_path, key_path)
            self.signer = FileSigner(key_path, self.origin, create=False)
            return old.vkey, new.vkey

    def close(self) -> None:
        """Release the files."""
        self._store.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditLog({str(self.directory)!r}, origin={self.origin!r}, size={self.size})"
