"""The fast verify path (msgspec batches, per-batch common checks, subtrees in bulk) against the reference path.

The reference is every line through the standard library's strict parser and ``check_common``:
the same report, problem for problem, for a log spoiled in any of the ways below, with one
process or two, whatever batch the spoiled line falls in.
"""

from __future__ import annotations

import json
import random
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboard.audit import AuditLog, KeySigner, _entry, _scan, _stretch, verify_log
from offboard.audit._entry import BATCH, canonical
from offboard.audit._merkle import CompactRange, Subtrees, leaf_hash, root_of
from offboard.audit._note import generate_skey
from offboard.errors import EntryError

ENTRIES = 2 * BATCH + 300  # three batches: spoiled lines land at batch edges and inside


@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> Path:
    """About 1,300 entries of cases, a checkpoint after every few cases."""
    directory = tmp_path_factory.mktemp("fast") / "audit"
    origin = "fast.example/offboard/audit/v1"
    with AuditLog.open(directory, origin, signer=KeySigner(generate_skey(origin))) as log:
        n = 0
        while log.size < ENTRIES:
            log.append_many(_case(n))
            if n % 7 == 0:
                log.checkpoint()
            n += 1
        log.checkpoint()
    return directory


def _case(n: int) -> list[tuple[str, dict]]:
    """A case the way the engine logs one: opened with a plan, an action per account, closed."""
    person, case, systems = {"id": f"p-{n % 97}"}, f"case-{n}", ("entra", "github", "slack")
    plan = [
        {"system": s, "account": {"id": f"{s}-{n}", "name": f"u{n}@{s}.example"}, "kind": "disable_account"}
        for s in systems
    ]
    entries = [
        ("case_opened", {"case": case, "person": person, "plan": plan, "termination_at": "2026-01-01T00:00:00.000Z"})
    ]
    for item in plan:
        action = {
            **item,
            "case": case,
            "person": person,
            "result": "verified",
            "responded_at": "2026-01-01T00:05:00.000Z",
        }
        entries.append(("action", action))
    counts = {"verified": len(systems)}
    entries.append(("case_closed", {"case": case, "person": person, "status": "complete", "counts": counts}))
    return entries


def _edit(line: bytes, change) -> bytes:
    try:
        obj = json.loads(line)
    except ValueError:  # an earlier spoil of the same line broke it
        return line
    if not isinstance(obj, dict):
        return line
    try:
        change(obj)
        return canonical(obj)
    # an earlier spoil changed the shape this one edits (a float or a long integer in the line, an account made a
    # string, a plan item made null, fewer plan items): the line stays as it is
    except (KeyError, TypeError, AttributeError, IndexError, EntryError):
        return line


def _set(key, value):
    return lambda obj: obj.__setitem__(key, value)


SPOILS = {
    "seq+1": lambda line: _edit(line, lambda o: o.__setitem__("seq", o["seq"] + 1)),
    "seq true": lambda line: (
        _edit(line, _set("seq", True)) if b'"seq":1,' in line else line.replace(b'"v":1', b'"v":true')
    ),
    "v true": lambda line: line.replace(b'"v":1', b'"v":true'),
    "v 2": lambda line: line.replace(b'"v":1', b'"v":2'),
    "log": lambda line: _edit(line, _set("log", "other.example/log")),
    "type bad": lambda line: _edit(line, _set("type", "Case Opened")),
    "type list": lambda line: _edit(line, _set("type", ["action"])),
    "type unknown": lambda line: _edit(line, _set("type", "something_new")),
    "time 25h": lambda line: _edit(line, lambda o: o.__setitem__("time", "2026-01-01T25:00:00.000Z")),
    "time 30 Feb": lambda line: _edit(line, _set("time", "2026-02-30T10:00:00.000Z")),
    "time LF": lambda line: _edit(line, _set("time", "2026-01-01T00:00:00.000Z\n2026-01-01T00:00:00.000Z")),
    "time short": lambda line: _edit(line, _set("time", "2026-01-01T00:00:00.00Z")),
    "time digits": lambda line: _edit(line, _set("time", "\u0662026-01-01T00:00:00.000Z")),
    "time int": lambda line: _edit(line, _set("time", 20260101)),
    "time back": lambda line: _edit(line, _set("time", "2020-01-01T00:00:00.000Z")),
    "no time": lambda line: _edit(line, lambda o: o.pop("time")),
    "person null": lambda line: _edit(line, _set("person", None)),
    "person id empty": lambda line: _edit(line, _set("person", {"id": ""})),
    "person id int": lambda line: _edit(line, _set("person", {"id": 7})),
    "person other": lambda line: _edit(line, _set("person", {"id": "p-other"})),
    "person gone": lambda line: _edit(line, lambda o: o.pop("person", None)),
    "person_prev str": lambda line: _edit(line, _set("person_prev", "3")),
    "person_prev bool": lambda line: _edit(line, _set("person_prev", False)),
    "person_prev wrong": lambda line: _edit(line, _set("person_prev", 0)),
    "float": lambda line: line[:-1] + b',"zz":1.5}',
    "long int": lambda line: line[:-1] + b',"zz":9007199254740993}',
    "duplicate key": lambda line: line[:-1] + b',"v":1}',
    "space": lambda line: line.replace(b":", b": ", 1),
    "escape": lambda line: line.replace(b'"v"', b'"\\u0076"'),
    "not an object": lambda line: b"[" + line + b"]",
    "bad utf-8": lambda line: line.replace(b'"v":1', b'"v":1,"\xff":1'),
    "result undone": lambda line: _edit(line, _set("result", "undone")) if b'"type":"action"' in line else line,
    "account odd": lambda line: _edit(line, _set("account", {"name": ["x"]})) if b'"type":"action"' in line else line,
    "case int": lambda line: _edit(line, _set("case", 5)),
    "key rotation": lambda line: _edit(line, _set("type", "key_rotation")),
    "plan int": lambda line: _edit(line, _set("plan", 5)) if b'"type":"case_opened"' in line else line,
    # nested objects that do not fit TypedEntry's structs (the batch is decoded as ScanEntry), or fit
    # them with a field missing or null (item_key falls back on the account's name, or on str())
    "person no id": lambda line: _edit(line, _set("person", {"name": "p-1"})),
    "person extra": lambda line: _edit(line, lambda o: o["person"].__setitem__("team", "x")),
    "account id null": lambda line: _edit(line, lambda o: o["account"].__setitem__("id", None)),
    "account str": lambda line: _edit(line, _set("account", "u@x.example")),
    "account null": lambda line: _edit(line, _set("account", None)),
    "account int": lambda line: _edit(line, _set("account", 7)) if b'"type":"action"' in line else line,
    "plan item null": lambda line: _edit(line, lambda o: o["plan"].__setitem__(0, None)),
    "plan item no kind": lambda line: _edit(line, lambda o: o["plan"][0].pop("kind")),
    "plan account id null": lambda line: _edit(line, lambda o: o["plan"][1]["account"].__setitem__("id", None)),
    "plan account str": lambda line: _edit(line, lambda o: o["plan"][2].__setitem__("account", "u@x.example")),
}


def _spoil(directory: Path, target: Path, picks: list[tuple[str, int]]) -> None:
    """Copy the log and spoil the lines picked; the leaf-hash cache is kept consistent, as an attacker would."""
    import shutil

    shutil.copytree(directory, target)
    lines = (target / "entries.jsonl").read_bytes().splitlines()
    for name, i in picks:
        if name == "delete":
            del lines[i % len(lines)]
        elif name == "swap":
            i %= len(lines) - 1
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif name == "shift":  # the LF after line i moves to the next line's first comma: joined, nothing changed
            i %= len(lines) - 1
            cut = lines[i + 1].find(b",")
            lines[i], lines[i + 1] = lines[i] + b"," + lines[i + 1][:cut], lines[i + 1][cut + 1 :]
        else:
            lines[i % len(lines)] = SPOILS[name](lines[i % len(lines)])
    (target / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    (target / "leafhashes.bin").write_bytes(b"".join(leaf_hash(line) for line in lines))


def _report(directory: Path, processes: int, reference: bool = False) -> dict:
    return verify_log(directory, processes=processes, sla_seconds=3600, reference=reference).as_dict()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    picks=st.lists(
        st.tuples(st.sampled_from([*SPOILS, "delete", "swap", "shift"]), st.integers(0, ENTRIES + 10)),
        min_size=1,
        max_size=3,
    ),
    processes=st.sampled_from([1, 2]),
)
def test_fast_and_reference_paths_give_the_same_report(big_log, tmp_path_factory, picks, processes):
    target = tmp_path_factory.mktemp("spoiled") / "audit"
    _spoil(big_log, target, picks)
    assert _report(target, processes) == _report(target, processes, reference=True)


@pytest.mark.parametrize("name", sorted(SPOILS))
def test_each_spoil_at_a_batch_edge(big_log, tmp_path, name):
    """Each spoil on the last line of the first batch and the first of the second."""
    target = tmp_path / "audit"
    _spoil(big_log, target, [(name, BATCH - 1), (name, BATCH)])
    assert _report(target, 1) == _report(target, 1, reference=True)


@pytest.mark.parametrize("native", [True, False], ids=["C extension", "msgspec alone"])
def test_a_line_boundary_moved_inside_an_entry_is_two_bad_lines(big_log, tmp_path, monkeypatch, native):
    """Entries i and i+1 joined by a comma read as one array of the same two values; their lines are
    not two entries. Both accelerated paths must say so, as the reference does (the batch decode once
    took the joined values for the lines' own)."""
    if native and not getattr(_entry, "NATIVE", False):
        pytest.skip("the C extension is not built")
    if not native:
        monkeypatch.setattr(_entry, "NATIVE", False, raising=False)
    target = tmp_path / "audit"
    _spoil(big_log, target, [("shift", 700)])
    fast = _report(target, 1)
    assert fast == _report(target, 1, reference=True)
    bad = [p for p in fast["problems"] if p["where"] in ("entries.jsonl line 701", "entries.jsonl line 702")]
    assert len(bad) == 2, fast["problems"]


@pytest.mark.parametrize("name", ["escape", "duplicate key", "space", "long int", "float", "bad utf-8"])
def test_each_spoil_without_the_c_extension(big_log, tmp_path, monkeypatch, name):
    """The msgspec path that runs where the extension could not be built: the reference's report."""
    monkeypatch.setattr(_entry, "NATIVE", False, raising=False)
    target = tmp_path / "audit"
    _spoil(big_log, target, [(name, BATCH - 1), (name, BATCH)])
    assert _report(target, 1) == _report(target, 1, reference=True)


def test_the_reference_path_uses_no_accelerator(big_log, monkeypatch):
    def refuse(*args):
        raise AssertionError("an accelerator was used")

    monkeypatch.setattr(_entry, "fast_parse", refuse)
    monkeypatch.setattr(_stretch, "fast_parse_batch", refuse)
    monkeypatch.setattr(_stretch, "fast_parse_span", refuse)
    monkeypatch.setattr(_scan, "_batch_columns", refuse)
    if _entry._native is not None:
        # line_starts only reads (a stretch is read before the process learns which path it takes); the
        # reference's stretch is split and summed again by the standard library (Stretch.plain)
        for name in ("span_canonical_array", "span_leaf_hashes", "leaf_hashes", "node_hashes"):
            monkeypatch.setattr(_entry._native, name, refuse)
    assert _report(big_log, 1, reference=True)["exit_code"] == 0


def test_the_untouched_log_is_intact_both_ways(big_log):
    assert _report(big_log, 1)["exit_code"] == 0
    assert _report(big_log, 2)["exit_code"] == 0
    assert _report(big_log, 2, reference=True)["exit_code"] == 0


def _as_entries(objs: list[dict]) -> list:
    """The dicts as the C extension's path decodes their lines (``ScanEntry``)."""
    import msgspec

    return msgspec.json.decode(json.dumps(objs), type=list[_entry.ScanEntry])


def _as_typed(objs: list[dict]) -> list:
    """The dicts as ``fast_parse_span`` decodes them: ``TypedEntry`` where they fit it, else ``ScanEntry``."""
    import msgspec

    try:
        return msgspec.json.decode(json.dumps(objs), type=list[_entry.TypedEntry])
    except msgspec.ValidationError:
        return _as_entries(objs)


@pytest.mark.parametrize("shape", [list, _as_entries, _as_typed], ids=["dicts", "ScanEntry", "TypedEntry"])
def test_the_batch_check_refuses_what_common_ok_refuses(shape):
    """One time that is two (the regex runs over the times joined by LF), true for 1, a wrong type or log, a bad person."""
    lines = [
        canonical({"log": "o", "seq": i, "time": "2026-01-01T00:00:00.000Z", "type": "note", "v": 1}) for i in range(4)
    ]
    objs = [json.loads(line) for line in lines]
    assert _batch_columns(shape(objs))
    objs[1]["time"] = "2026-01-01T00:00:00.000Z\n2026-01-01T00:00:00.000Z"
    assert not _batch_columns(shape(objs))
    objs[1]["time"] = "2026-01-01T00:00:00.000Z"
    for key, value in (
        ("seq", True),
        ("v", True),
        ("person_prev", True),
        ("person_prev", "3"),
        ("type", None),
        ("log", "p"),
        ("person", None),
        ("person", {}),
        ("person", {"id": ""}),
        ("person", {"id": None}),
        ("person", {"id": 7}),
        ("person", "p-1"),
    ):
        spoiled = [dict(o) for o in objs]
        spoiled[2][key] = value if key != "seq" else (True if value is True else 2)
        assert not _batch_columns(shape(spoiled)), (key, value)
        for other in spoiled[:2]:  # the same with every other entry naming a person
            other["person"] = {"id": "p-1"}
        assert not _batch_columns(shape(spoiled)), (key, value, "mixed")
    objs[1]["seq"] = True  # 1 == True: the types are checked too
    assert not _batch_columns(shape(objs))
    objs[1]["seq"] = 1
    del objs[2]["time"]  # absent
    assert not _batch_columns(shape(objs))
    objs[2]["time"] = "2026-01-01T00:00:00.000Z"
    objs[3]["person"], objs[3]["person_prev"] = {"id": "p-1"}, None
    kinds, times, pids, prevs = _batch_columns(shape(objs))
    assert pids == [None, None, None, "p-1"] and prevs[3] is None and prevs[0] is _scan._ABSENT


def _batch_columns(objs):
    return _scan._batch_columns(objs, 0, "o")


def test_a_scan_entry_reads_as_the_dict_of_the_fields_a_verify_reads(big_log):
    """``ScanEntry`` holds only the fields a verify reads: each reads as in the dict of the whole line, and a
    name it does not decode raises instead of reading as absent (a reader asking for more fails loudly)."""
    lines = (big_log / "entries.jsonl").read_bytes().splitlines()
    names = _entry.ScanEntry.__struct_fields__
    for line, entry in zip(lines, _as_entries([json.loads(line) for line in lines]), strict=True):
        obj = json.loads(line)
        assert {name: entry.get(name, "-") for name in names} == {name: obj.get(name, "-") for name in names}
        assert [name in entry for name in names] == [name in obj for name in names]
        for name in names:
            if name in obj:
                assert entry[name] == obj[name]
            else:
                with pytest.raises(KeyError):
                    entry[name]
        with pytest.raises(AttributeError):
            entry.get("verification")


def test_the_case_book_reads_no_field_a_scan_entry_leaves_out(big_log):
    """Every case entry of the log through ``CaseBook.add`` as ``ScanEntry``: the same findings as from dicts
    (a field the book reads that the struct does not decode raises AttributeError here)."""
    from offboard.audit._cases import CaseBook

    objs = [json.loads(line) for line in (big_log / "entries.jsonl").read_bytes().splitlines()]
    objs += [  # the case types the generated log lacks
        {"type": "case_undone", "case": "case-1", "actor": "dana", "time": "2026-01-02T00:00:00.000Z", "failed": []},
        {"type": "case_undone", "case": "case-new", "person": {"id": "p-9"}, "actor": "dana", "failed": ["x"]},
        {"type": "approval", "seq": 5, "approver": ""},
        {"type": "case_closed", "case": "case-2", "status": "incomplete", "counts": {"failed": 1}, "elapsed_ms": 5},
    ]
    books = []
    for shaped in (objs, _as_entries(objs), _as_typed(objs)):
        book = CaseBook()
        for obj in shaped:
            if obj.get("type") in _scan.CASE_TYPES:
                book.add(obj)
        books.append(book)
    plain = books[0]
    assert type(_as_typed(objs)[0]) is _entry.TypedEntry
    for typed in books[1:]:
        assert plain.approval_findings == typed.approval_findings != []
        assert {c: r.findings(3600) for c, r in plain.cases.items()} == {
            c: r.findings(3600) for c, r in typed.cases.items()
        }
        assert {c: (r.person, r.planned, r.names) for c, r in plain.cases.items()} == {
            c: (r.person, r.planned, r.names) for c, r in typed.cases.items()
        }
    assert any(r.findings(3600) for r in plain.cases.values())
    assert plain.cases["case-new"].person == "p-9"


def test_a_batch_is_decoded_typed_unless_a_nested_object_does_not_fit(big_log, tmp_path):
    """``fast_parse_span`` decodes a batch as ``TypedEntry`` (nested structs), and a batch holding a plan
    item that is not an object as ``ScanEntry``: the verify then reports what the reference reports."""
    from offboard.audit._stretch import read_stretch

    # ./scripts/test builds the C extension (a compiler and OpenSSL's headers are installed first)
    assert _entry.NATIVE, (
        "the C extension is not built: run ./scripts/test, or pip install -e . with gcc and libssl-dev"
    )

    def decoded(directory: Path) -> set[type]:
        path = directory / "entries.jsonl"
        stretch = read_stretch(path, 0, path.stat().st_size)
        return {type(entry) for entry in stretch.proven(0, BATCH)}

    assert decoded(big_log) == {_entry.TypedEntry}
    target = tmp_path / "audit"
    _spoil(big_log, target, [("plan item null", 0)])
    assert decoded(target) == {_entry.ScanEntry}
    assert _report(target, 1) == _report(target, 1, reference=True)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300), st.integers(0, 300), st.lists(st.integers(0, 300), max_size=6))
def test_subtrees_cover_gives_the_compact_range_root(first, length, sizes):
    leaves = [sha256(i.to_bytes(4, "big")).digest() for i in range(first + length)]
    tree = Subtrees(first, b"".join(leaves[first:]))
    for size in [first, first + length, *(first + s % (length + 1) for s in sizes)]:
        prefix = CompactRange()
        prefix.extend(leaves[:first])
        for level, node in tree.cover(size):
            prefix.append_subtree(level, node)
        assert prefix.root() == root_of(leaves[:size])


def test_msgspec_encoder_matches_stdlib_for_every_code_point():
    """The fast path's canonical check is msgspec's sorted encoding: it must be the stdlib's, character for character."""
    assert _entry._msgspec is not None  # a dependency (pyproject.toml): the fast path must have it
    stdlib = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
    encode = _entry._ms_encode
    for cp in [*range(0, 0xD800), *range(0xE000, 0x110000)]:
        obj = {"k": chr(cp), chr(cp): [chr(cp), 1]}
        assert encode(obj) == stdlib(obj).encode(), hex(cp)
    keys = [chr(cp) for cp in random.Random(7).sample(range(0x110000), 2000) if not 0xD800 <= cp < 0xE000]
    obj = dict.fromkeys(keys, 0)
    assert encode(obj) == stdlib(obj).encode()  # sorted by code point, as Python sorts str


def test_a_line_nested_too_deeply_is_an_entry_problem_not_a_crash():
    line = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert _entry.fast_parse(line) is None and _entry.fast_parse_many([line]) == [None]
    with pytest.raises(_entry.EntryError, match="nested too deeply"):
        _entry.checked_entry(line, 0, "o")


def test_actions_without_a_person_name_no_one(big_log, tmp_path):
    """A case whose entries name no person (its open retyped): its finding names no person, not the last one seen."""
    target = tmp_path / "audit"
    _spoil(big_log, target, [("type unknown", 0), *(("person gone", i) for i in range(1, 5))])
    for processes in (1, 2):
        fast = _report(target, processes)
        assert fast == _report(target, processes, reference=True)
        assert "case case-0: actions or a close without a case_opened entry" in str(fast["problems"])


@pytest.mark.parametrize("plan", [5, "x", {"system": "s"}, None])
def test_a_plan_that_is_not_a_list_is_a_finding_not_a_crash(big_log, tmp_path, plan):
    """The writer refuses a ``case_opened`` whose plan is not a list; a forged one made verify (both paths)
    stop with ``TypeError: 'int' object is not iterable``. Now it is the case's finding."""
    lines = (big_log / "entries.jsonl").read_bytes().splitlines()
    first = next(i for i, line in enumerate(lines) if b'"type":"case_opened"' in line)
    target = tmp_path / "audit"
    _spoil(big_log, target, [])
    forged = lines[:]
    forged[first] = _edit(lines[first], (lambda o: o.pop("plan")) if plan is None else _set("plan", plan))
    (target / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in forged))
    (target / "leafhashes.bin").write_bytes(b"".join(leaf_hash(line) for line in forged))
    for processes in (1, 2):
        fast = _report(target, processes)
        assert fast == _report(target, processes, reference=True)
        what = {"5": "a JSON number", "'x'": "a JSON string", "None": "missing"}.get(repr(plan), "a JSON object")
        assert f"case case-0 (person p-0): case_opened plan is {what}, not a list of items" in str(fast["problems"])
