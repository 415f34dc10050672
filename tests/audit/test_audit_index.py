"""The per-person index (index/): evidence through it equals evidence from a scan; a wrong index is caught."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from offboard.audit import AuditError, build_evidence, load_trust, parse_checkpoint, verify_log
from offboard.audit._index import RECORD, node_position, person_tag, read_state, tree_count
from offboard.audit._merkle import Tree, leaf_hash


@pytest.fixture
def spread_log(sealed_log, audit_kit) -> Path:
    """Alice has a second case after Bob's and Carol's, so her entries are not next to each other."""
    with audit_kit.open_log(sealed_log) as log:
        audit_kit.write_case(log, "p-alice", "case-3", ("entra", "github", "slack"))
        audit_kit.write_case(log, "p-bob", "case-4")
        log.checkpoint()
    return sealed_log


def lines_of(directory: Path) -> list[bytes]:
    return (directory / "entries.jsonl").read_bytes().split(b"\n")[:-1]


def seqs_of(directory: Path, person: str) -> list[int]:
    return [i for i, line in enumerate(lines_of(directory)) if json.loads(line).get("person", {}).get("id") == person]


def export(directory: Path, person: str, out: Path, pinned=()) -> tuple[bytes, list[str]]:
    notes: list[str] = []
    build_evidence(directory, person, out, load_trust(directory / "trusted-keys.txt"), pinned=pinned, notes=notes)
    return out.read_bytes(), notes


def scanned(directory: Path, person: str, tmp_path: Path, pinned=()) -> bytes:
    """The bundle exported from a copy of the log without its index (the scan)."""
    copy = tmp_path / "scan-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(directory, copy)
    shutil.rmtree(copy / "index")
    data, notes = export(copy, person, tmp_path / "scanned.zip", pinned)
    assert notes and "not used" in notes[0]
    return data


def set_record(directory: Path, seq: int, tag: bytes | None = None, offset: int | None = None) -> None:
    path = directory / "index" / "records.bin"
    data = bytearray(path.read_bytes())
    if tag is not None:
        data[RECORD * seq : RECORD * seq + 8] = tag
    if offset is not None:
        data[RECORD * seq + 8 : RECORD * seq + 16] = offset.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def index_problems(directory: Path) -> list[str]:
    return [str(p) for p in verify_log(directory, processes=1).problems if "index/" in p.where]


def test_the_writer_keeps_the_index_at_every_seal(spread_log, audit_kit):
    n = len(lines_of(spread_log))
    state = read_state(spread_log, audit_kit.origin)
    assert state is not None and state.size == n
    assert state.root() == Tree([leaf_hash(x) for x in lines_of(spread_log)]).root()
    records = (spread_log / "index" / "records.bin").read_bytes()
    assert len(records) == RECORD * n
    offset = 0
    for seq, line in enumerate(lines_of(spread_log)):
        pid = json.loads(line).get("person", {}).get("id")
        assert records[RECORD * seq : RECORD * seq + 8] == (person_tag(pid) if pid else bytes(8))
        assert int.from_bytes(records[RECORD * seq + 8 : RECORD * seq + 16], "big") == offset
        offset += len(line) + 1
    tree = (spread_log / "index" / "tree.bin").read_bytes()
    assert len(tree) == 32 * tree_count(n)
    full = Tree([leaf_hash(x) for x in lines_of(spread_log)])
    for level in range(n.bit_length()):
        for i in range(n >> level):
            assert tree[32 * node_position(level, i) :][:32] == full._subtree(i << level, (i + 1) << level)
    assert index_problems(spread_log) == []


@pytest.mark.parametrize("person", ["p-alice", "p-bob", "p-carol", "E-p-carol"])
def test_evidence_through_the_index_equals_the_scan(spread_log, tmp_path, person):
    fast, notes = export(spread_log, person, tmp_path / "fast.zip")
    if person.startswith("E-"):  # an employee id is not in the index: the scan finds it
        assert notes and "not in the index" in notes[0]
    else:
        assert notes == []
    assert fast == scanned(spread_log, person, tmp_path)


def test_evidence_through_the_index_with_a_pinned_checkpoint(spread_log, tmp_path, audit_kit):
    trust = load_trust(spread_log / "trusted-keys.txt")
    pin = parse_checkpoint((spread_log / "checkpoints" / f"{4:020d}.note").read_bytes(), trust)
    fast, notes = export(spread_log, "p-alice", tmp_path / "fast.zip", [pin])
    assert notes == []
    assert fast == scanned(spread_log, "p-alice", tmp_path, [pin])
    # A pin the log does not extend: the index cannot prove it, the scan reports the fork.
    forged = dataclasses.replace(pin, root=bytes(32))
    with pytest.raises(AuditError, match="fork"):
        export(spread_log, "p-alice", tmp_path / "fork.zip", [forged])


def test_unsealed_entries_are_refused_as_by_the_scan(spread_log, audit_kit, tmp_path):
    with audit_kit.open_log(spread_log) as log:
        log.append("note", {"person": {"id": "p-alice"}, "text": "after the checkpoint"})
    state = read_state(spread_log, audit_kit.origin)
    assert state is not None and state.size == len(lines_of(spread_log)) - 1  # appended, not sealed
    with pytest.raises(AuditError, match="not sealed yet"):
        export(spread_log, "p-alice", tmp_path / "a.zip")


def test_index_pointing_at_another_persons_entry(spread_log, tmp_path):
    reference = scanned(spread_log, "p-alice", tmp_path)
    bob = seqs_of(spread_log, "p-bob")[1]
    set_record(spread_log, bob, tag=person_tag("p-alice"))
    fast, notes = export(spread_log, "p-alice", tmp_path / "fast.zip")
    assert fast == reference
    assert notes and "not used" in notes[0]
    assert any(f"entry {bob}" in p for p in index_problems(spread_log))


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_index_missing_one_of_the_persons_entries(spread_log, tmp_path, which):
    reference = scanned(spread_log, "p-alice", tmp_path)
    seqs = seqs_of(spread_log, "p-alice")
    seq = {"first": seqs[0], "middle": seqs[len(seqs) // 2], "last": seqs[-1]}[which]
    set_record(spread_log, seq, tag=bytes(8))
    fast, notes = export(spread_log, "p-alice", tmp_path / "fast.zip")
    assert fast == reference
    assert notes and "not used" in notes[0]
    assert any(f"entry {seq}" in p for p in index_problems(spread_log))


def test_index_missing_the_last_entry_and_persons_json_agreeing(spread_log, tmp_path):
    """Both caches edited to hide the newest entry: evidence cannot tell without a scan, verify can."""
    seqs = seqs_of(spread_log, "p-alice")
    set_record(spread_log, seqs[-1], tag=bytes(8))
    persons = json.loads((spread_log / "persons.json").read_text())
    persons["persons"]["p-alice"] = seqs[-2]
    (spread_log / "persons.json").write_text(json.dumps(persons))
    assert any(f"entry {seqs[-1]}" in p for p in index_problems(spread_log))


def test_index_offset_pointing_at_another_line(spread_log, tmp_path):
    reference = scanned(spread_log, "p-alice", tmp_path)
    alice, bob = seqs_of(spread_log, "p-alice")[2], seqs_of(spread_log, "p-bob")[2]
    bob_offset = sum(len(x) + 1 for x in lines_of(spread_log)[:bob])
    set_record(spread_log, alice, offset=bob_offset)
    fast, notes = export(spread_log, "p-alice", tmp_path / "fast.zip")
    assert fast == reference and notes
    assert any(f"entry {alice}" in p for p in index_problems(spread_log))


def test_damaged_tree_is_never_used_for_a_proof(spread_log, tmp_path):
    reference = scanned(spread_log, "p-alice", tmp_path)
    path = spread_log / "index" / "tree.bin"
    seq = seqs_of(spread_log, "p-alice")[0]
    data = bytearray(path.read_bytes())
    sibling = node_position(0, seq ^ 1)  # the leaf hash next to one of Alice's entries
    data[32 * sibling] ^= 1
    path.write_bytes(bytes(data))
    fast, notes = export(spread_log, "p-alice", tmp_path / "fast.zip")
    assert fast == reference
    assert notes and "proof that does not lead to the checkpoint root" in notes[0]


def test_damaged_state_and_missing_index(spread_log, audit_kit, tmp_path):
    state = spread_log / "index" / "state.json"
    raw = json.loads(state.read_text())
    raw["offset"] += 1
    state.write_text(json.dumps(raw))
    assert any("offset" in p for p in index_problems(spread_log))
    raw["offset"] -= 1
    raw["size"] += 1
    state.write_text(json.dumps(raw))
    assert any("state.json" in p and "integrity" in p for p in index_problems(spread_log))
    shutil.rmtree(spread_log / "index")
    problems = index_problems(spread_log)
    assert problems and all(p.startswith("warning") for p in problems)
    assert verify_log(spread_log, processes=1).exit_code == 0
    _, notes = export(spread_log, "p-alice", tmp_path / "a.zip")
    assert notes and "no index" in notes[0]
    with audit_kit.open_log(spread_log) as log:  # the next seal rebuilds it
        log.append("note", {"text": "more"})
        log.checkpoint()
    assert index_problems(spread_log) == []
    _, notes = export(spread_log, "p-alice", tmp_path / "b.zip")
    assert notes == []


def test_crash_leftovers_are_cut_and_a_rewritten_log_rebuilds_the_index(spread_log, audit_kit, tmp_path):
    for name in ("records.bin", "tree.bin"):  # a crash after appending, before state.json was replaced
        with open(spread_log / "index" / name, "ab") as f:
            f.write(b"\x07" * 48)
    assert index_problems(spread_log) == []  # bytes beyond the state are not the index
    with audit_kit.open_log(spread_log) as log:
        audit_kit.write_case(log, "p-dave", "case-9")
        log.checkpoint()
    assert index_problems(spread_log) == []
    fast, notes = export(spread_log, "p-dave", tmp_path / "fast.zip")
    assert notes == [] and fast == scanned(spread_log, "p-dave", tmp_path)


@pytest.mark.parametrize("processes", [1, 3])
def test_verify_finds_a_wrong_record_however_the_log_is_cut(spread_log, processes):
    seq = seqs_of(spread_log, "p-carol")[-1]
    set_record(spread_log, seq, tag=person_tag("p-bob"))
    report = verify_log(spread_log, processes=processes)
    assert report.exit_code == 1
    assert [p.what for p in report.problems if "records.bin" in p.where][0].startswith(f"the record of entry {seq} ")


def test_an_index_ahead_of_the_seal_is_kept_only_when_its_tree_has_the_sealed_root(spread_log, audit_kit):
    """A database mirror can hold lines beyond the checkpoint it writes: the index is checked, not rebuilt."""
    from offboard.audit._index import update_index

    sealed = len(lines_of(spread_log))
    root = Tree([leaf_hash(x) for x in lines_of(spread_log)]).root()
    with audit_kit.open_log(spread_log) as log:
        log.append("note", {"text": "beyond the seal"})
    assert update_index(spread_log, audit_kit.origin) == sealed + 1
    set_record(spread_log, 0, tag=b"marker!!")  # survives only if the index is kept
    assert update_index(spread_log, audit_kit.origin, sealed, root) == sealed + 1
    assert (spread_log / "index" / "records.bin").read_bytes()[:8] == b"marker!!"
    assert update_index(spread_log, audit_kit.origin, sealed, bytes(32)) == sealed + 1  # not the tree: rebuilt
    assert (spread_log / "index" / "records.bin").read_bytes()[:8] != b"marker!!"
    assert index_problems(spread_log) == []


def test_lines_slipped_in_before_the_states_offset_are_not_missed(spread_log, audit_kit, tmp_path):
    """Unsealed lines for the person, with state.json's offset moved past them: the scan refuses, so must evidence."""
    with audit_kit.open_log(spread_log) as log:
        log.append("note", {"person": {"id": "p-alice"}, "text": "unsealed"})
    state = spread_log / "index" / "state.json"
    raw = json.loads(state.read_text())
    raw["offset"] = (spread_log / "entries.jsonl").stat().st_size
    state.write_text(json.dumps(raw))
    notes: list[str] = []
    with pytest.raises(AuditError, match="not sealed yet"):
        build_evidence(
            spread_log, "p-alice", tmp_path / "a.zip", load_trust(spread_log / "trusted-keys.txt"), notes=notes
        )
    assert notes and "offset" in notes[0]
