"""Offline verification of an audit log: integrity (exit 1) and compliance findings (exit 2)."""

from __future__ import annotations

import gc
import json
import re
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any, Sequence

from ._cases import CaseBook
from ._entry import EntryError, _decode, _encode, check_common, fast_parse, parse_time
from ._log import CHECKPOINTS, ENTRIES, LATEST, LEAF_HASHES, TRUSTED_KEYS, read_origin
from ._merkle import CompactRange
from ._note import Checkpoint, NoteError, TrustList, parse_checkpoint

__all__ = ["Problem", "Report", "load_trust", "verify_log", "MAX_LISTED"]

MAX_LISTED = 50
BACKWARDS_TOLERANCE_S = 2
HISTORY_RE = re.compile(r"[0-9]{20}\.note\Z")


@dataclass(frozen=True)
class Problem:
    """One thing verification found: ``integrity``, ``finding`` (compliance) or ``warning``."""

    severity: str
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.what}"


@dataclass
class Report:
    """What ``verify_log`` found."""

    origin: str
    size: int = 0
    checkpoint: Checkpoint | None = None
    problems: list[Problem] = field(default_factory=list)
    trust_source: str = ""

    def add(self, severity: str, where: str, what: str) -> None:
        """Record a problem."""
        self.problems.append(Problem(severity, where, what))

    def of(self, severity: str) -> list[Problem]:
        """Problems of one severity."""
        return [p for p in self.problems if p.severity == severity]

    @property
    def exit_code(self) -> int:
        """0 intact, 1 integrity failure, 2 compliance findings only."""
        if self.of("integrity"):
            return 1
        return 2 if self.of("finding") else 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready report."""
        return {
            "origin": self.origin,
            "entries": self.size,
            "status": {0: "intact", 1: "integrity failure", 2: "compliance findings"}[self.exit_code],
            "exit_code": self.exit_code,
            "checkpoint": self.checkpoint.note if self.checkpoint else None,
            "checkpoint_size": self.checkpoint.size if self.checkpoint else None,
            "trusted_keys": self.trust_source,
            "problems": [p.__dict__ for p in self.problems],
        }


def load_trust(path: Path) -> TrustList:
    """Read a trusted-keys file; errors name the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NoteError(f"cannot read trusted keys {path}: {exc}") from None
    trust = TrustList.parse(text, str(path))
    if not trust.keys:
        raise NoteError(f"{path} lists no keys")
    return trust


class _Limiter:
    def __init__(self, report: Report):
        self.report, self.count = report, 0

    def __call__(self, where: str, what: str) -> None:
        self.count += 1
        if self.count <= MAX_LISTED:
            self.report.add("integrity", where, what)

    def finish(self) -> None:
        if self.count > MAX_LISTED:
            self.report.add("integrity", ENTRIES, f"... and {self.count - MAX_LISTED} more entry problems")


def verify_log(directory: Path, trust: TrustList | None = None, **options: Any) -> Report:
    """Verify entries, leaf-hash cache, every stored checkpoint and any pinned checkpoints."""
    enabled = gc.isenabled()
    gc.disable()  # the loop allocates millions of short-lived objects; collections would dominate
    try:
        return _verify_log(directory, trust, **options)
    finally:
        if enabled:
            gc.enable()


def _verify_log(
    directory: Path,
    trust: TrustList | None = None,
    *,
    origin: str | None = None,
    pinned: Sequence[tuple[str, bytes]] = (),
    sla_seconds: int | None = None,
    strict: bool = False,
) -> Report:
    directory = Path(directory)
    source = "given"
    if trust is None:
        trust, source = load_trust(directory / TRUSTED_KEYS), f"{directory / TRUSTED_KEYS} (the log's own copy)"
    if origin is None:
        names = trust.names
        origin = names.pop() if len(names) == 1 else read_origin(directory)
    report = Report(origin, trust_source=source)
    if not (directory / ENTRIES).exists():
        report.add("integrity", str(directory), f"no {ENTRIES}: not an audit log, or it was deleted")
        return report

    # Checkpoints first: they say which tree sizes need a root.
    stored: list[tuple[str, Checkpoint]] = []
    folder = directory / CHECKPOINTS
    names_found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    for name in names_found:
        where = f"{CHECKPOINTS}/{name}"
        if name.endswith(".tmp"):
            report.add("warning", where, "left over from an interrupted write")
            continue
        if name != LATEST and not HISTORY_RE.match(name):
            report.add("warning", where, "unexpected file")
            continue
        try:
            cp = parse_checkpoint((folder / name).read_bytes(), trust, origin)
        except NoteError as exc:
            report.add("integrity", where, str(exc))
            continue
        if name != LATEST and int(name[:20]) != cp.size:
            report.add("integrity", where, f"the file name says size {int(name[:20])} but the checkpoint says {cp.size}")
            continue
        stored.append((where, cp))
    pins: list[tuple[str, Checkpoint]] = []
    for name, data in pinned:
        try:
            pins.append((f"pinned {name}", parse_checkpoint(data, trust, origin)))
        except NoteError as exc:
            report.add("integrity", f"pinned {name}", str(exc))
    wanted = {cp.size for _, cp in stored + pins}

    # Entries.
    data = (directory / ENTRIES).read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        report.add("integrity", ENTRIES, f"torn last line: {len(data) - end} bytes at offset {end} without a final "
                   "newline (opening the log for writing quarantines it in a recovery entry)")
    lines = data[:end].split(b"\n")[:-1] if end else []
    n = report.size = len(lines)
    bad = _Limiter(report)
    book = CaseBook()
    roots: dict[int, bytes] = {0: CompactRange().root()}
    cr = CompactRange()
    hashes: list[bytes] = []
    persons: dict[str, int] = {}
    rotations: list[tuple[int, Any]] = []
    prev_time = ""
    sha, enc, dec, fast, append_leaf = sha256, _encode, _decode, fast_parse, cr.append
    for index, line in enumerate(lines):
        h = sha(b"\x00" + line).digest()
        hashes.append(h)
        append_leaf(h)
        if index + 1 in wanted:
            roots[index + 1] = cr.root()
        try:
            obj = fast(line)
            if obj is None:
                text = line.decode("utf-8")
                obj = dec(text)
                if type(obj) is not dict:
                    raise EntryError("not a JSON object")
                if enc(obj) != text:
                    raise EntryError("not canonical JSON (whitespace, key order, duplicate keys, escapes or CR)")
            check_common(obj, index, origin)
        except UnicodeDecodeError as exc:
            bad(f"{ENTRIES} line {index + 1}", f"not valid UTF-8 (byte {exc.start})")
            continue
        except EntryError as exc:
            bad(f"{ENTRIES} line {index + 1}", str(exc))
            continue
        except ValueError as exc:
            bad(f"{ENTRIES} line {index + 1}", f"not valid JSON ({exc})")
            continue
        person = obj.get("person")
        if isinstance(person, dict) and isinstance(person.get("id"), str):
            pid = person["id"]
            expected = persons.get(pid)
            if obj.get("person_prev", "missing") != expected:
                bad(f"{ENTRIES} line {index + 1}", f"person_prev is {obj.get('person_prev', 'missing')!r}, but the "
                    f"previous entry for person {pid} is {expected!r}: entries were removed, reordered or inserted")
            persons[pid] = index
        elif "person_prev" in obj:
            bad(f"{ENTRIES} line {index + 1}", "person_prev without a person.id")
        ts = obj["time"]
        if ts >= prev_time:
            prev_time = ts
        elif (parse_time(prev_time) - parse_time(ts)).total_seconds() > BACKWARDS_TOLERANCE_S:  # type: ignore[operator]
            report.add("finding", f"{ENTRIES} line {index + 1}", f"time {ts} is before the previous entry's {prev_time}")
        kind = obj["type"]
        if kind == "key_rotation":
            rotations.append((index, obj.get("new")))
        elif kind in ("action", "case_opened", "case_closed", "approval"):
            book.add(obj)
    bad.finish()

    cache = directory / LEAF_HASHES
    if cache.exists():
        cached = cache.read_bytes()
        joined = b"".join(hashes)
        if cached != joined:
            first = next((i for i in range(min(len(cached), len(joined)) // 32)
                          if cached[i * 32 : i * 32 + 32] != hashes[i]), min(len(cached), len(joined)) // 32)
            report.add("integrity", LEAF_HASHES, f"does not match {ENTRIES} (first difference at leaf {first}; "
                       f"{len(cached) // 32} cached hashes for {n} entries)")

    by_size: dict[int, tuple[str, bytes]] = {}
    newest: Checkpoint | None = None
    for where, cp in stored:
        other = by_size.setdefault(cp.size, (where, cp.root))
        if other[1] != cp.root:
            report.add("integrity", where, f"equivocation: {other[0]} is signed for the same size with a different root")
        if cp.size > n:
            report.add("integrity", where, f"covers {cp.size} entries but the log has only {n}: entries were truncated or deleted")
            continue
        if roots[cp.size] != cp.root:
            report.add("integrity", where, f"root hash does not match the first {cp.size} entries: entries were "
                       "changed, deleted, inserted or reordered")
            continue
        if newest is None or cp.size > newest.size:
            newest = cp
    latest = next((cp for where, cp in stored if where.endswith(LATEST)), None)
    if stored and not (folder / LATEST).exists():
        report.add("integrity", f"{CHECKPOINTS}/{LATEST}", "missing")
    if latest and newest and latest.size < newest.size:
        report.add("warning", f"{CHECKPOINTS}/{LATEST}", f"is older ({latest.size}) than the newest stored checkpoint ({newest.size})")
    report.checkpoint = newest
    sealed = newest.size if newest else 0
    if n > sealed and not report.of("integrity"):
        severity = "integrity" if strict else "warning"
        report.add(severity, ENTRIES, f"{n - sealed} entries after the latest checkpoint (size {sealed}) are not "
                   "sealed yet: they are not protected until the next checkpoint")
    for where, pin in pins:
        if pin.size > n:
            report.add("integrity", where, f"rollback: the pinned checkpoint covers {pin.size} entries but the log has only {n}")
        elif roots[pin.size] != pin.root:
            report.add("integrity", where, f"fork: the log's tree at size {pin.size} has a different root than the pinned checkpoint")
    for index, vkey in rotations:
        if not isinstance(vkey, str) or trust.find(vkey) is None:
            report.add("integrity", f"{ENTRIES} line {index + 1}", f"key_rotation announces {vkey!r}, which is not in the trusted keys")
    for finding in book.findings(sla_seconds):
        report.add("finding", "cases", finding)
    return report


def report_json(report: Report) -> str:
    """The report as JSON."""
    return json.dumps(report.as_dict(), indent=2, sort_keys=True)
