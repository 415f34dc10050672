"""The per-person index beside the log (``index/``): one person's evidence without scanning the log.

The writer extends the index each time it stores a checkpoint, reading only the lines added since
(``update_index``). It holds, for every entry, the person it is about and where its line starts,
and every node of the Merkle tree, so that ``build_evidence`` reads a handful of lines and builds
their inclusion proofs in O(log n) reads. The index is advisory: ``index_evidence`` checks every
line it reads exactly as the scan would (canonical entry at its ``seq``, the person, an unbroken
``person_prev`` chain, each inclusion proof folded to the signed checkpoint root) and returns
None, so that the caller scans the log, when anything disagrees; ``verify`` compares the whole
index with the entries.

Files (all integers big-endian):

- ``index/records.bin``: 16 bytes per entry: the first 8 bytes of SHA-256 of its ``person.id``
  (UTF-8; 8 zero bytes when it has none), then the byte offset of its line in ``entries.jsonl``.
- ``index/tree.bin``: every node of the RFC 6962 tree (leaf hashes included) in the order an
  appending writer completes them (post-order), 32 bytes each.
- ``index/state.json``: ``{"v": 1, "origin": ..., "size": n, "offset": bytes, "peaks": [hex]}``,
  the entries covered, the byte offset just after them, and the roots of the perfect subtrees
  of the first ``n`` leaves from the largest down (the writer's compact range).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from ._entry import EntryError, checked_entry, fast_parse
from ._merkle import EMPTY_ROOT, Tree, leaf_hash, verify_consistency, verify_inclusion

__all__ = [
    "INDEX_DIR",
    "IndexState",
    "person_tag",
    "node_position",
    "tree_count",
    "read_state",
    "update_index",
    "index_evidence",
    "IndexedEvidence",
    "NO_PERSON",
    "RECORD",
    "line_tag",
]

INDEX_DIR = "index"
STATE = "state.json"
RECORDS = "records.bin"
TREE = "tree.bin"
RECORD = 16
NO_PERSON = bytes(8)
_ENTRIES = "entries.jsonl"
_PERSONS = "persons.json"


def person_tag(pid: str) -> bytes:
    """The 8-byte tag of a ``person.id`` in ``records.bin``."""
    return sha256(pid.encode("utf-8", "surrogatepass")).digest()[:8]


def line_tag(line: bytes) -> bytes:
    """The tag of the person a line names (zeros when it names none or does not parse)."""
    obj: Any = fast_parse(line)
    if obj is None:
        try:
            obj = json.loads(line)
        except ValueError:
            return NO_PERSON
    person = obj.get("person") if isinstance(obj, dict) else None
    pid = person.get("id") if isinstance(person, dict) else None
    return person_tag(pid) if isinstance(pid, str) and pid else NO_PERSON


def tree_count(size: int) -> int:
    """How many nodes a tree of ``size`` leaves has completed (``tree.bin`` holds 32 bytes each)."""
    return 2 * size - bin(size).count("1")


def node_position(level: int, index: int) -> int:
    """Where the perfect subtree of ``2**level`` leaves starting at leaf ``index * 2**level`` sits in ``tree.bin``."""
    end = (index + 1) << level
    trailing = (end & -end).bit_length() - 1
    return tree_count(end) - 1 - (trailing - level)


@dataclass
class IndexState:
    """What ``state.json`` says."""

    size: int
    offset: int
    peaks: list[bytes]

    def root(self) -> bytes:
        """The tree root of the first ``size`` entries, from the peaks."""
        if not self.peaks:
            return EMPTY_ROOT
        r = self.peaks[-1]
        for h in reversed(self.peaks[:-1]):
            r = sha256(b"\x01" + h + r).digest()
        return r


def read_state(directory: Path, origin: str) -> IndexState | None:
    """The index's state, or None when it is missing, unreadable or for another log."""
    try:
        raw = json.loads((Path(directory) / INDEX_DIR / STATE).read_bytes())
        size, offset, peaks = raw["size"], raw["offset"], [bytes.fromhex(p) for p in raw["peaks"]]
        if (
            raw.get("v") != 1
            or raw.get("origin") != origin
            or type(size) is not int
            or type(offset) is not int
            or size < 0
            or offset < 0
            or len(peaks) != bin(size).count("1")
            or any(len(p) != 32 for p in peaks)
        ):
            return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return IndexState(size, offset, peaks)


def _write_state(folder: Path, origin: str, state: IndexState) -> None:
    data = json.dumps(
        {"v": 1, "origin": origin, "size": state.size, "offset": state.offset, "peaks": [p.hex() for p in state.peaks]}
    ).encode()
    tmp = folder / (STATE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, folder / STATE)


def _append(path: Path, keep: int, data: bytes) -> None:
    """Cut ``path`` to ``keep`` bytes (what a crash may have left beyond the state), append ``data``, fsync."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, keep)
        os.lseek(fd, keep, os.SEEK_SET)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def update_index(directory: Path, origin: str, size: int | None = None, root: bytes | None = None) -> int:
    """Extend ``index/`` over the lines added to ``entries.jsonl`` since it was last extended.

    Call with the log locked for writing, after sealing ``size`` entries with tree ``root``: an
    index whose tree does not reach that root at that size (the entries were rewritten under it),
    or that is missing or inconsistent, is rebuilt from the start. Returns the entries covered."""
    directory = Path(directory)
    folder = directory / INDEX_DIR
    folder.mkdir(exist_ok=True, mode=0o700)
    records, tree = folder / RECORDS, folder / TREE
    state = read_state(directory, origin)
    if state is not None:
        try:
            if records.stat().st_size < RECORD * state.size or tree.stat().st_size < 32 * tree_count(state.size):
                state = None
        except OSError:
            state = None
    if state is not None and size is not None and state.size > size:  # a mirror may hold lines beyond the seal
        if root is not None and _tree_root(tree, state.size, size) != root:
            state = None
        size = root = None  # checked here: _extend only adds lines beyond the state
    extended = None if state is None else _extend(directory, state, size, root)
    if state is None or extended is None:
        state = IndexState(0, 0, [])
        extended = _extend(directory, state, None, None)  # rebuilt from the entries as they are
        assert extended is not None
    recs, nodes, new = extended
    _append(records, RECORD * state.size, recs)
    _append(tree, 32 * tree_count(state.size), nodes)
    _write_state(folder, origin, new)
    return new.size


def _extend(
    directory: Path, state: IndexState, size: int | None, root: bytes | None
) -> tuple[bytes, bytes, IndexState] | None:
    """The records and nodes of the lines after ``state``; None when the tree misses ``root`` at ``size``."""
    with open(directory / _ENTRIES, "rb") as f:
        f.seek(state.offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1] if end else []
    recs: list[bytes] = []
    nodes: list[bytes] = []
    n, offset, peaks = state.size, state.offset, list(state.peaks)
    if root is not None and n == size and state.root() != root:
        return None
    for line in lines:
        recs.append(line_tag(line) + offset.to_bytes(8, "big"))
        offset += len(line) + 1
        h = leaf_hash(line)
        nodes.append(h)
        k = n
        while k & 1:
            h = sha256(b"\x01" + peaks.pop() + h).digest()
            nodes.append(h)
            k >>= 1
        peaks.append(h)
        n += 1
        if root is not None and n == size and IndexState(n, offset, peaks).root() != root:
            return None
    return b"".join(recs), b"".join(nodes), IndexState(n, offset, peaks)


def _tree_root(path: Path, covered: int, size: int) -> bytes | None:
    """The root at ``size`` from ``tree.bin`` (which holds ``covered`` leaves), or None if unreadable."""
    try:
        with open(path, "rb") as f:
            return _FileTree(f.fileno(), covered).root(size)
    except (OSError, _Miss):
        return None


class _FileTree(Tree):
    """Roots and proofs from ``tree.bin``: every perfect subtree is one 32-byte read."""

    def __init__(self, fd: int, size: int):  # noqa: D107 - no super().__init__: nothing is hashed up front
        self.size = size
        self._fd = fd

    def _subtree(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            level = n.bit_length() - 1
            node = os.pread(self._fd, 32, 32 * node_position(level, start >> level))
            if len(node) != 32:
                raise _Miss("tree.bin is shorter than its state says")
            return node
        k = 1 << ((n - 1).bit_length() - 1)
        return sha256(b"\x01" + self._subtree(start, start + k) + self._subtree(start + k, end)).digest()


class _Miss(Exception):
    """The index disagrees with what was read: the caller scans the log instead."""


@dataclass
class IndexedEvidence:
    """One person's sealed entries found through the index, each checked and proved."""

    person: str
    chosen: list[tuple[bytes, dict[str, Any]]]
    proofs: dict[int, list[bytes]]
    consistency: dict[int, list[bytes]]


def _persons_last(directory: Path, person: str, size: int) -> int:
    """``person``'s last ``seq`` as the writer's ``persons.json`` (written at the same seal) records it.

    A second, independent record of where each person's chain ends: records.bin must agree with it,
    so an index that lost a person's newest entries is not used. Found by a search, not a parse (the
    file is ``json.dumps`` output: a key is preceded by ``{`` or ``, ``, a quote inside a string by ``\\``)."""
    data = (directory / _PERSONS).read_bytes()
    if not data.startswith(b"{") or f'"size": {size}, '.encode() not in data[:4096]:
        raise _Miss(f"{_PERSONS} is not the record of the checkpoint at size {size}")
    needle = (json.dumps(person) + ": ").encode()
    pos = data.find(needle)
    while pos > 0 and data[pos - 1 : pos] != b"{" and data[pos - 2 : pos] != b", ":
        pos = data.find(needle, pos + 1)
    if pos <= 0:
        raise _Miss(f"{_PERSONS} has no entry for the person")
    start = pos + len(needle)
    stop = start
    while data[stop : stop + 1].isdigit():
        stop += 1
    if stop == start:
        raise _Miss(f"{_PERSONS} is malformed")
    return int(data[start:stop])


def _aligned_matches(records: bytes, tag: bytes) -> list[int]:
    out: list[int] = []
    pos = records.find(tag)
    while pos >= 0:
        if pos % RECORD == 0:
            out.append(pos // RECORD)
            pos = records.find(tag, pos + RECORD)
        else:
            pos = records.find(tag, pos + 1)
    return out


def index_evidence(
    directory: Path, person: str, origin: str, size: int, root: bytes, pins: Sequence[tuple[int, bytes]] = ()
) -> IndexedEvidence | str:
    """``person``'s entries below ``size`` through the index, or why the log must be scanned instead.

    ``size`` and ``root`` are those of a verified checkpoint. Every line is read from
    ``entries.jsonl`` and checked as the scan would; each inclusion proof (and the consistency
    proof from each pinned ``(size, root)``) is verified against the checkpoint before use."""
    try:
        return _index_evidence(Path(directory), person, origin, size, root, pins)
    except _Miss as exc:
        return str(exc)
    except EntryError as exc:
        return f"an entry the index points at: {exc}"
    except (OSError, ValueError) as exc:
        return f"the index cannot be used: {exc}"


def _index_evidence(
    directory: Path, person: str, origin: str, size: int, root: bytes, pins: Sequence[tuple[int, bytes]]
) -> IndexedEvidence:
    state = read_state(directory, origin)
    if state is None or state.size < size:
        raise _Miss("no index, or it does not cover the checkpoint")
    folder = directory / INDEX_DIR
    with open(folder / RECORDS, "rb") as f:
        records = f.read(RECORD * state.size)
    if len(records) != RECORD * state.size:
        raise _Miss("records.bin is shorter than its state says")
    seqs = _aligned_matches(records, person_tag(person))
    if not seqs:
        raise _Miss("the person is not in the index (maybe an employee id)")
    needle = json.dumps(person, ensure_ascii=False).encode()
    with open(directory / _ENTRIES, "rb") as f:
        # The slow path refuses when the person has an entry after the checkpoint: so must this one.
        if seqs[-1] >= size:
            raise _Miss("the person has entries after the checkpoint")
        if seqs[-1] != _persons_last(directory, person, size):
            raise _Miss(f"records.bin ends the person's entries at {seqs[-1]}, persons.json elsewhere")
        last = int.from_bytes(records[-8:], "big")
        tail = os.pread(f.fileno(), state.offset - last, last) if state.offset > last else b""
        if not tail.endswith(b"\n") or tail.find(b"\n") != len(tail) - 1:
            raise _Miss("state.json's offset is not the end of the last entry records.bin covers")
        f.seek(state.offset)
        if needle in f.read():  # lines the index does not cover yet
            raise _Miss("the person may have entries the index does not cover")
        chosen: list[tuple[bytes, dict[str, Any]]] = []
        previous: int | None = None
        fd = f.fileno()
        for seq in seqs:
            start = int.from_bytes(records[RECORD * seq + 8 : RECORD * seq + 16], "big")
            following = records[RECORD * seq + 24 : RECORD * seq + 32]
            stop = int.from_bytes(following, "big") if seq + 1 < state.size else state.offset
            data = os.pread(fd, stop - start, start)
            if stop <= start or len(data) != stop - start or data.find(b"\n") != len(data) - 1:
                raise _Miss(f"records.bin gives entry {seq} a byte range that is not one line")
            line = data[:-1]
            obj = checked_entry(line, seq, origin)
            found = obj.get("person")
            if not isinstance(found, dict) or found.get("id") != person:
                raise _Miss(f"records.bin says entry {seq} is about {person}, but it is not")
            if obj.get("person_prev") != previous:
                raise _Miss(f"entry {seq}: person_prev {obj.get('person_prev')!r}, the index gave {previous!r}")
            previous = seq
            chosen.append((line, obj))
    with open(folder / TREE, "rb") as t:
        tree = _FileTree(t.fileno(), size)
        proofs: dict[int, list[bytes]] = {}
        for line, obj in chosen:
            seq = obj["seq"]
            path = tree.inclusion_proof(seq, size)
            if not verify_inclusion(leaf_hash(line), seq, size, path, root):
                raise _Miss(f"tree.bin gives entry {seq} a proof that does not lead to the checkpoint root")
            proofs[seq] = path
        consistency: dict[int, list[bytes]] = {}
        for pin_size, pin_root in pins:
            proof = tree.consistency_proof(pin_size, size)
            if not verify_consistency(pin_size, size, pin_root, root, proof):
                raise _Miss(f"no consistency proof from the pinned size {pin_size} (a fork, or a bad tree.bin)")
            consistency[pin_size] = proof
    return IndexedEvidence(person, chosen, proofs, consistency)
