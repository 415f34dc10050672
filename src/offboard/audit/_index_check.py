"""``verify``'s check of the per-person index (``index/``) against the entries it scanned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._index import INDEX_DIR, RECORDS, STATE, TREE, IndexState, node_position, tree_count
from ._scan import Part

__all__ = ["check_index"]

REBUILD = "remove index/ and the next checkpoint rebuilds it"


def check_index(
    directory: Path, state: IndexState | None, parts: list[Part], n: int, roots: dict[int, bytes], report: Any
) -> None:
    """Report an index that disagrees with the entries (integrity) or is missing (warning).

    Evidence never trusts the index (it checks every line it reads), but a wrong one means the
    directory was edited or damaged: the writer only ever appends what it read from the entries."""
    folder = Path(directory) / INDEX_DIR
    if state is None:
        if (folder / STATE).exists():
            report.add("integrity", f"{INDEX_DIR}/{STATE}", f"unreadable, or not this log's index: {REBUILD}")
        elif n:
            report.add(
                "warning",
                f"{INDEX_DIR}/",
                "missing: 'offboard audit evidence' scans the whole log until the next checkpoint rebuilds it",
            )
        return
    where = f"{INDEX_DIR}/{STATE}"
    if state.size > n:
        report.add("integrity", where, f"covers {state.size} entries but the log has only {n}: {REBUILD}")
        return
    diffs = [part.index_diff for part in parts if part.index_diff is not None]
    if diffs:
        report.add(
            "integrity",
            f"{INDEX_DIR}/{RECORDS}",
            f"the record of entry {min(diffs)} (person tag, line offset) does not match entries.jsonl: "
            f"the index was edited or damaged; {REBUILD}",
        )
    expected = next((part.index_end for part in parts if part.index_end is not None), 0 if state.size == 0 else None)
    if state.offset != expected:
        report.add("integrity", where, f"offset {state.offset} is not where entry {state.size} starts: {REBUILD}")
    if roots.get(state.size) != state.root():
        report.add("integrity", where, f"its tree peaks do not match the first {state.size} entries: {REBUILD}")
        return
    tree = folder / TREE
    try:
        with open(tree, "rb") as f:
            f.seek(0, 2)
            length = f.tell()
            start, stored = 0, []
            for level in range(state.size.bit_length() - 1, -1, -1):
                if state.size >> level & 1:
                    f.seek(32 * node_position(level, start >> level))
                    stored.append(f.read(32))
                    start += 1 << level
    except OSError as exc:
        report.add("integrity", f"{INDEX_DIR}/{TREE}", f"unreadable ({exc}): {REBUILD}")
        return
    if length < 32 * tree_count(state.size) or stored != state.peaks:
        report.add(
            "integrity", f"{INDEX_DIR}/{TREE}", f"does not hold the tree of the first {state.size} entries: {REBUILD}"
        )
