"""One pass over a stretch of the log: leaf hashes, subtrees, parsing, per-person chains, cases.

``verify_log`` cuts ``entries.jsonl`` into stretches at line boundaries and scans them in
worker processes (or in-process for a small log); each scan returns a ``Part`` small enough to
send back, and ``_verify`` merges the parts in log order, so the report is the same however
the log was cut.
"""

from __future__ import annotations

import gc
import os
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from ._cases import CaseBook, CaseRecord, item_key
from ._entry import (
    ABSENT,
    BATCH,
    FORMAT_VERSION,
    AccountRef,
    EntryError,
    PersonRef,
    ScanEntry,
    TypedEntry,
    checked_entry,
    known_type,
    parse_time,
    times_match,
    valid_date,
)
from ._index import NO_PERSON, RECORD, line_tag, person_tag
from ._merkle import Subtrees
from ._stretch import Stretch

__all__ = [
    "Part",
    "BACKWARDS_TOLERANCE_S",
    "MAX_LISTED",
    "layout",
    "read_lines",
    "scan",
    "person_problem",
    "time_finding",
]

MAX_LISTED = 50
BACKWARDS_TOLERANCE_S = 2
CASE_TYPES = frozenset({"action", "case_opened", "case_closed", "case_undone", "approval"})
_UNSEEN = object()

Node = tuple[int, bytes]  # (level, hash) of a perfect, aligned subtree


@dataclass
class Part:
    """What one stretch of the log (entries ``first`` to ``first + count - 1``) says."""

    first: int
    count: int = 0
    nodes: list[Node] = field(default_factory=list)  # the stretch as aligned subtrees, left to right
    snaps: dict[int, list[Node]] = field(default_factory=dict)  # size -> subtrees of [first, size)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (index, what), the first MAX_LISTED
    bad_count: int = 0
    late: list[tuple[int, str]] = field(default_factory=list)  # time went backwards: (index, what)
    first_time: tuple[int, str] | None = None
    max_time: str = ""
    person_first: list[tuple[str, int, Any]] = field(default_factory=list)  # (person, index, person_prev)
    person_last: dict[str, int] = field(default_factory=dict)
    rotations: list[tuple[int, Any]] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)  # in order of first appearance
    case_findings: dict[str, list[str]] = field(default_factory=dict)
    approvals: list[str] = field(default_factory=list)
    cache_diff: int | None = None  # first leaf whose cached hash differs
    index_diff: int | None = None  # first entry whose index/records.bin record differs
    index_end: int | None = None  # byte offset just after the entries the index covers, if in this stretch


Columns = tuple[tuple[str, ...], tuple[str, ...], list[Any], list[Any]]


def _batch_columns(objs: list[Any], first: int, origin: str) -> Columns | None:
    """``common_ok`` for entries ``first``.. of a batch at once, and their columns (None: check them one by one).

    Each common field is gathered in one pass over the batch and checked as a whole: ``seq`` are
    the integers ``first``.., ``v`` all the integer 1, ``log`` all ``origin``, each distinct ``type``
    and day valid, every ``time`` matched by one regular expression over the batch's times joined by
    LF (each time has 24 characters, none of them LF, so the match splits at the joins), ``person_prev``
    an integer, null or absent, ``person`` absent or an object with a non-empty string ``id``.

    The columns are ``(types, times, person ids, person_prev)``: a person id is None where the entry
    has no ``person``, and ``person_prev`` is ``_ABSENT`` where it is absent."""
    try:
        types = set(map(type, objs)) if objs else None
        if types == _DICT:
            return _columns(objs, first, origin, _FIELDS, _prevs_of_dicts, _people_of_dicts)
        if types == _TYPED:  # decoded as ``TypedEntry``: absent fields are ABSENT, a person a PersonRef
            return _columns(objs, first, origin, _ATTRS, _PREV_ATTR, _PERSON_ATTR, PersonRef, _ID_ATTR)
        if types == _ENTRY:  # decoded as ``ScanEntry``: absent fields are ABSENT already
            return _columns(objs, first, origin, _ATTRS, _PREV_ATTR, _PERSON_ATTR)
        return None
    except (TypeError, KeyError):  # a field missing, or unhashable where a string or an integer belongs
        return None


def _columns(
    objs: list[Any],
    first: int,
    origin: str,
    fields: Any,
    prevs_of: Any,
    people_of: Any,
    person_type: type = dict,
    id_of: Any = None,
) -> Columns | None:
    n = len(objs)
    seqs, vs, logs, kinds, times = zip(*map(fields, objs))  # one pass, then a tuple per field
    if seqs != tuple(range(first, first + n)) or set(map(type, seqs)) != _INT:
        return None  # == alone lets true stand for 1
    if set(vs) != _VERSION or set(map(type, vs)) != _INT:  # the types of all, not of the set: {1, True} == {1}
        return None
    if set(logs) != {origin} or not all(map(known_type, set(kinds))):
        return None
    if not times_match(times):
        return None
    if not all(map(valid_date, {t[:10] for t in times})):
        return None
    prevs = list(map(prevs_of, objs))
    if not set(map(type, prevs)) <= _PREV_TYPES:
        return None
    people = list(map(people_of, objs))
    shapes = set(map(type, people))
    if shapes == {person_type}:  # every entry names a person
        pids = list(map(id_of, people)) if id_of else list(map(_get, people, repeat("id", n)))
        named = pids
    elif shapes <= {person_type, _ABSENT_TYPE}:
        pids = [None if person is _ABSENT else id_of(person) if id_of else person["id"] for person in people]
        named = [pid for pid, person in zip(pids, people) if person is not _ABSENT]
    else:
        return None
    if named and (set(map(type, named)) != _STR or "" in named):
        return None
    return kinds, times, pids, prevs


_get = dict.get
_FIELDS = itemgetter("seq", "v", "log", "type", "time")
_ATTRS = attrgetter("seq", "v", "log", "type", "time")
_PREV_ATTR, _PERSON_ATTR = attrgetter("person_prev"), attrgetter("person")
_ACTION_ATTRS = attrgetter("result", "system", "account", "kind", "responded_at")
_ID_ATTR = attrgetter("id")
_INT, _STR, _DICT, _VERSION = {int}, {str}, {dict}, {FORMAT_VERSION}
_ENTRY, _TYPED = {ScanEntry}, {TypedEntry}
_STRUCTS = (ScanEntry, TypedEntry)
_ABSENT = ABSENT  # a field the entry does not have (no JSON value is of this type)
_ABSENT_TYPE = type(_ABSENT)
_PREV_TYPES = {int, type(None), _ABSENT_TYPE}


def _prevs_of_dicts(obj: dict[str, Any]) -> Any:
    return obj.get("person_prev", _ABSENT)


def _people_of_dicts(obj: dict[str, Any]) -> Any:
    return obj.get("person", _ABSENT)


def person_problem(pid: str, prev: Any, expected: Any) -> str:
    """The message for a broken per-person chain."""
    return (
        f"person_prev is {prev!r}, but the previous entry for person {pid} is {expected!r}: "
        "entries were removed, reordered or inserted"
    )


def time_finding(ts: str, prev: str) -> str | None:
    """The finding when ``ts`` is more than the tolerance before ``prev`` (the latest time so far)."""
    if ts >= prev:
        return None
    if (parse_time(prev) - parse_time(ts)).total_seconds() > BACKWARDS_TOLERANCE_S:  # type: ignore[operator]
        return f"time {ts} is before the previous entry's {prev}"
    return None


def scan(*args: Any, **kwargs: Any) -> tuple[Part, CaseBook]:
    """``_scan`` with the cyclic garbage collector paused: parsing allocates millions of small dicts
    and lists, none in a cycle (reference counting frees them), and each allocation threshold crossed
    started a collection that walked every object kept so far (measured: parsing took 4.7x as long)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _scan(*args, **kwargs)
    finally:
        if paused:
            gc.enable()


def _scan(
    stretch: Stretch,
    first: int,
    origin: str,
    wanted: set[int],
    sla_seconds: int | None,
    cache: Path | None,
    index_at: tuple[Path, int] | None = None,
    reference: bool = False,
) -> tuple[Part, CaseBook]:
    """Check entries ``first``.. of ``origin``; the chains that cross stretches are left to the merge.

    ``index_at`` is ``(records.bin, entries it covers)``: the records of the stretch's entries are
    recomputed and compared. ``reference`` turns every accelerator off: the stretch is split and
    hashed by the standard library, each line is parsed by it and checked on its own, and every
    case entry goes
    through ``CaseBook.add`` (the path the fast one must
    agree with, report for report; tests/audit/test_audit_verify_fast.py)."""
    if reference:
        stretch = stretch.plain()
    count = len(stretch)
    part = Part(first, count)
    end = first + count
    hashes = stretch.leaf_hashes()
    tree = Subtrees(first, hashes, accelerated=not reference)
    part.nodes = tree.cover(end)
    part.snaps = {size: tree.cover(size) for size in wanted if first < size <= end}
    del tree
    whose: list[Any] = []  # per entry: its person.id, None, or (a line that failed its checks) its tag
    book = CaseBook()
    add_case, cases = book.add, book.cases
    bad, late = part.bad, part.late
    persons: dict[str, int] = part.person_last
    firsts = part.person_first
    rotations = part.rotations
    inline = not reference  # the reference hands every case entry to CaseBook.add
    prev_time = ""
    for start in range(0, count, BATCH):  # a batch at a time: checked while it is in the cache
        base = first + start
        stop = min(start + BATCH, count)
        parsed = None if reference else stretch.proven(start, stop)
        columns = None if parsed is None else _batch_columns(parsed, base, origin)
        indices: Any
        kinds: Sequence[str]
        times: Sequence[str]
        if parsed is not None and columns is not None:
            batch, indices = parsed, range(base, base + stop - start)
            kinds, times, pids, prevs = columns
            whose.extend(pids)
        else:  # one entry at a time; those that fail their checks are listed and left out
            chunk = stretch.lines(start, stop)
            batch, indices, kinds, times, pids, prevs = _one_by_one(chunk, base, origin, reference, part, whose)
        for index, pid, prev in zip(indices, pids, prevs):
            if pid is None:
                if prev is not _ABSENT:
                    part.bad_count += 1
                    if len(bad) < MAX_LISTED:
                        bad.append((index, "person_prev without a person.id"))
                continue
            last = persons.get(pid, _UNSEEN)
            if last is _UNSEEN:
                firsts.append((pid, index, "missing" if prev is _ABSENT else prev))
            elif prev != last:
                part.bad_count += 1
                if len(bad) < MAX_LISTED:
                    bad.append((index, person_problem(pid, "missing" if prev is _ABSENT else prev, last)))
            persons[pid] = index
        if times and times[0] >= prev_time and list(times) == sorted(times):  # in order: the common case
            if part.first_time is None:
                part.first_time = (indices[0], times[0])
            prev_time = times[-1]
        else:
            for index, ts in zip(indices, times):
                if ts >= prev_time:
                    prev_time = ts
                    if part.first_time is None:
                        part.first_time = (index, ts)
                elif what := time_finding(ts, prev_time):
                    late.append((index, what))
        typed = bool(batch) and type(batch[0]) in _STRUCTS  # else dicts
        for index, obj, kind, pid in zip(indices, batch, kinds, pids):
            # CaseBook.add, inline for most entries: every action, and a case's open and close when decoded typed
            if inline and (kind == "action" or typed and (kind == "case_opened" or kind == "case_closed")):
                case = obj.case if typed else obj.get("case")
                if type(case) is not str:
                    continue
                record = cases.get(case)
                if record is None:
                    record = cases[case] = CaseRecord(case)
                if record.person is None:
                    record.person = pid
                if kind == "case_closed":
                    record.closed = obj
                elif kind == "case_opened":
                    if record.opened is None:
                        record.opened = obj
                        record.take_plan(obj.plan)
                else:
                    if typed:
                        fields = _ACTION_ATTRS(obj)
                        if _ABSENT in fields:  # absent reads as None, as dict.get gives it
                            fields = tuple(None if value is _ABSENT else value for value in fields)
                        result, system, account, action_kind, responded = fields
                    else:
                        result, responded = obj.get("result"), obj.get("responded_at")
                        system, account, action_kind = obj.get("system"), obj.get("account"), obj.get("kind")
                    shape = type(account)  # item_key's common case, inline
                    ident = account.id if shape is AccountRef else account.get("id") if shape is dict else None
                    if type(ident) is str and type(system) is str and type(action_kind) is str:
                        key = (system, ident, action_kind)
                    else:
                        key = item_key(system, account.as_dict() if shape is AccountRef else account, action_kind)
                    (record.reversed if result == "undone" else record.actions)[key] = (result, responded)
            elif kind in CASE_TYPES:
                add_case(obj)
            elif kind == "key_rotation":
                rotations.append((index, obj.get("new")))
    part.max_time = prev_time
    part.cases = list(book.cases)
    part.case_findings = {case: found for case, record in book.cases.items() if (found := record.findings(sla_seconds))}
    part.approvals = book.approval_findings
    if cache is not None:
        part.cache_diff = _cache_diff(cache, first, hashes)
    if index_at is not None and first < index_at[1]:
        _check_records(part, stretch, whose, *index_at)
    return part, book


def _one_by_one(
    chunk: list[bytes], base: int, origin: str, reference: bool, part: Part, whose: list[Any]
) -> tuple[list[Any], list[int], list[str], list[str], list[Any], list[Any]]:
    """The columns of a batch checked line by line (``checked_entry``): entries that fail are counted,
    listed (the first ``MAX_LISTED``) and tagged in ``whose``, and left out of the columns."""
    objs: list[Any] = []
    indices: list[int] = []
    for index, line in enumerate(chunk, base):
        try:
            obj = checked_entry(line, index, origin, accelerated=not reference)
        except EntryError as exc:
            part.bad_count += 1
            if len(part.bad) < MAX_LISTED:
                part.bad.append((index, str(exc)))
            whose.append(line_tag(line))
            continue
        person = obj.get("person")
        whose.append(None if person is None else person["id"])  # checked_entry: absent or with a non-empty id
        objs.append(obj)
        indices.append(index)
    kinds = [obj["type"] for obj in objs]
    times = [obj["time"] for obj in objs]
    pids = [obj["person"]["id"] if "person" in obj else None for obj in objs]
    prevs = [obj.get("person_prev", _ABSENT) for obj in objs]
    return objs, indices, kinds, times, pids, prevs


def _check_records(part: Part, stretch: Stretch, whose: list[Any], records: Path, covered: int) -> None:
    """Compare ``records.bin`` for this stretch with the person tags and line offsets of its entries."""
    first = part.first
    count = min(len(stretch), covered - first)
    offsets = stretch.starts[: count + 1]  # a copy: each line's file offset, and the next
    if count < len(stretch) or first + count == covered:
        part.index_end = offsets[count]
    del offsets[count:]
    tags: dict[Any, bytes] = {None: NO_PERSON}
    for who in set(whose[:count]):
        if who not in tags:
            tags[who] = who if isinstance(who, bytes) else person_tag(who)
    expected_tags = b"".join(map(tags.__getitem__, whose[:count]))
    if sys.byteorder == "little":
        offsets.byteswap()
    with open(records, "rb") as f:
        f.seek(first * RECORD)
        stored = f.read(count * RECORD)
    if len(stored) == count * RECORD:
        pairs = array("Q")
        pairs.frombytes(stored)  # 8-byte items copied as they are: tag, offset, tag, offset, ...
        if pairs[0::2].tobytes() == expected_tags and pairs[1::2].tobytes() == offsets.tobytes():
            return
    want = offsets.tobytes()
    part.index_diff = next(
        (
            first + i
            for i in range(count)
            if stored[i * RECORD : i * RECORD + RECORD] != expected_tags[i * 8 : i * 8 + 8] + want[i * 8 : i * 8 + 8]
        ),
        first + count,
    )


def _cache_diff(cache: Path, first: int, hashes: bytes) -> int | None:
    """The first leaf of this stretch whose hash in the cache file differs (missing ones are the merge's)."""
    with open(cache, "rb") as f:
        f.seek(first * 32)
        cached = f.read(len(hashes))
    if cached == hashes[: len(cached)]:
        return None
    return next(first + i // 32 for i in range(0, len(cached), 32) if cached[i : i + 32] != hashes[i : i + 32])


def read_lines(path: Path, begin: int, end: int) -> list[bytes]:
    """The lines in bytes ``begin``..``end`` (``end`` just after a newline)."""
    with open(path, "rb") as f:
        f.seek(begin)
        data = f.read(end - begin)
    if len(data) != end - begin or (data and data[-1:] != b"\n"):
        raise OSError(f"{path} changed while it was being verified")
    lines = data.split(b"\n")
    lines.pop()
    return lines


def layout(path: Path, pieces: int) -> tuple[int, int, list[tuple[int, int]]]:
    """File size, the end of the last complete line, and up to ``pieces`` byte ranges of whole lines."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        end, pos, window = 0, size, 1 << 20
        while pos > 0:
            start = max(0, pos - window)
            f.seek(start)
            chunk = f.read(pos - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            pos = start
        bounds = [0]
        for i in range(1, pieces):
            pos = max(end * i // pieces, bounds[-1])
            f.seek(pos)
            while True:
                chunk = f.read(window)
                cut = chunk.find(b"\n")
                if cut >= 0 or not chunk:
                    break
                pos += len(chunk)
            bound = pos + cut + 1 if cut >= 0 else end
            if bounds[-1] < bound < end:
                bounds.append(bound)
        bounds.append(end)
    return size, end, [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def merge_records(records: list[CaseRecord]) -> CaseRecord:
    """One case's records from consecutive stretches, merged in log order."""
    merged = CaseRecord(records[0].case)
    for record in records:
        merged.merge(record)
    return merged
