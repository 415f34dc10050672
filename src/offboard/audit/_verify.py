"""Offline verification of an audit log: integrity (exit 1) and compliance findings (exit 2)."""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._cases import CaseRecord
from ._entry import EntryError, checked_entry
from ._index import INDEX_DIR, RECORDS, read_state
from ._index_check import check_index
from ._log import CHECKPOINTS, ENTRIES, LATEST, LEAF_HASHES, TRUSTED_KEYS, read_origin
from ._merkle import CompactRange
from ._note import Checkpoint, NoteError, TrustList, parse_checkpoint
from ._scan import MAX_LISTED, Part, layout, merge_records, person_problem, read_lines, scan, time_finding
from ._stretch import read_stretch
from ._witness import WitnessKey, verify_cosignatures

__all__ = ["Problem", "Report", "load_trust", "verify_log", "MAX_LISTED"]

#: A log is split over processes only when each gets at least this many bytes of entries.
MIN_BYTES_PER_PROCESS = 32 << 20
HISTORY_RE = re.compile(r"[0-9]{20}\.note\Z")
COSIG_RE = re.compile(r"[0-9]{20}\.cosig\Z")


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


def verify_log(directory: Path, trust: TrustList | None = None, **options: Any) -> Report:
    """Verify entries, leaf-hash cache, every stored checkpoint and any pinned checkpoints.

    ``reference=True`` parses every line with the standard library alone, one by one: slower, the
    same report (for an auditor who wants no accelerator between the bytes and the verdict)."""
    enabled = gc.isenabled()
    gc.disable()  # the scan allocates millions of short-lived objects; collections would dominate
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
    processes: int | None = None,
    witness_keys: Sequence[WitnessKey] = (),
    min_witnesses: int = 0,
    reference: bool = False,
) -> Report:
    directory = Path(directory)
    source = "given"
    if trust is None:
        trust, source = load_trust(directory / TRUSTED_KEYS), f"{directory / TRUSTED_KEYS} (the log's own copy)"
    if origin is None:
        names = trust.names
        origin = names.pop() if len(names) == 1 else read_origin(directory)
    report = Report(origin, trust_source=source)
    path = directory / ENTRIES
    if not path.exists():
        report.add("integrity", str(directory), f"no {ENTRIES}: not an audit log, or it was deleted")
        return report

    # Worker processes start reading their stretches while the checkpoints are checked here.
    size, end, ranges = layout(path, _pieces(path, processes))
    workers = None
    if len(ranges) > 1:
        try:
            workers = _Workers(path, ranges)
        except OSError:  # no processes to be had: one pass here
            workers = None
    try:
        stored, pins = _checkpoints(directory, trust, origin, pinned, report)
        wanted = {cp.size for _, cp in stored + pins}  # the tree sizes that need a root
        cache = directory / LEAF_HASHES
        cache_path = cache if cache.exists() else None
        state = read_state(directory, origin)
        index_at = (directory / INDEX_DIR / RECORDS, state.size) if state is not None else None
        if state is not None:
            wanted.add(state.size)
        parts: list[Part] | None = None
        records: dict[str, list[CaseRecord]] = {}
        if workers is not None:
            try:
                parts = workers.scan(origin, wanted, sla_seconds, cache_path, index_at, reference)
                records = workers.records(parts)
            except _WorkerFailed:
                parts = None  # fall back to one pass here: same checks, same report
        if parts is None:
            ranges = [(0, end)] if end else []
            parts = (
                [scan(read_stretch(path, 0, end), 0, origin, wanted, sla_seconds, cache_path, index_at, reference)[0]]
                if end
                else []
            )
    finally:
        if workers is not None:
            workers.close()

    if end < size:
        report.add(
            "integrity",
            ENTRIES,
            f"torn last line: {size - end} bytes at offset {end} without a final "
            "newline (opening the log for writing quarantines it in a recovery entry)",
        )
    n = report.size = sum(part.count for part in parts)
    roots = _merge(report, parts, ranges, path, origin, reference)

    if cache_path is not None:
        cached = os.path.getsize(cache_path)
        diffs = [part.cache_diff for part in parts if part.cache_diff is not None]
        if diffs or cached != 32 * n:
            first = min(diffs) if diffs else min(cached, 32 * n) // 32
            report.add(
                "integrity",
                LEAF_HASHES,
                f"does not match {ENTRIES} (first difference at leaf {first}; "
                f"{cached // 32} cached hashes for {n} entries)",
            )

    by_size: dict[int, tuple[str, bytes]] = {}
    newest: Checkpoint | None = None
    for where, cp in stored:
        other = by_size.setdefault(cp.size, (where, cp.root))
        if other[1] != cp.root:
            report.add(
                "integrity", where, f"equivocation: {other[0]} is signed for the same size with a different root"
            )
        if cp.size > n:
            report.add(
                "integrity",
                where,
                f"covers {cp.size} entries but the log has only {n}: entries were truncated or deleted",
            )
            continue
        if roots.get(cp.size) != cp.root:
            report.add(
                "integrity",
                where,
                f"root hash does not match the first {cp.size} entries: entries were "
                "changed, deleted, inserted or reordered",
            )
            continue
        if newest is None or cp.size > newest.size:
            newest = cp
    latest = next((cp for where, cp in stored if where.endswith(LATEST)), None)
    if stored and not (directory / CHECKPOINTS / LATEST).exists():
        report.add("integrity", f"{CHECKPOINTS}/{LATEST}", "missing")
    if latest and newest and latest.size < newest.size:
        report.add(
            "integrity",
            f"{CHECKPOINTS}/{LATEST}",
            f"is older ({latest.size}) than the newest stored checkpoint ({newest.size}): "
            "the writer refuses to sign until it is restored",
        )
    if n and not stored and not report.of("integrity"):
        report.add(
            "integrity",
            CHECKPOINTS,
            f"the log has {n} entries but no checkpoint: an empty log is sealed at size 0 when it is "
            "created, so every checkpoint was deleted",
        )
    report.checkpoint = newest
    if newest is not None and (witness_keys or min_witnesses):
        _check_witnesses(directory, newest, witness_keys, min_witnesses, report)
    sealed = newest.size if newest else 0
    if n > sealed and not report.of("integrity"):
        severity = "integrity" if strict else "warning"
        report.add(
            severity,
            ENTRIES,
            f"{n - sealed} entries after the latest checkpoint (size {sealed}) are not "
            "sealed yet: they are not protected until the next checkpoint",
        )
    for where, pin in pins:
        if pin.size > n:
            report.add(
                "integrity",
                where,
                f"rollback: the pinned checkpoint covers {pin.size} entries but the log has only {n}",
            )
        elif roots.get(pin.size) != pin.root:
            report.add(
                "integrity",
                where,
                f"fork: the log's tree at size {pin.size} has a different root than the pinned checkpoint",
            )
    check_index(directory, state, parts, n, roots, report)  # after the checks that look at report.of("integrity")
    for part in parts:
        for index, vkey in part.rotations:
            if not isinstance(vkey, str) or trust.find(vkey) is None:
                report.add(
                    "integrity",
                    f"{ENTRIES} line {index + 1}",
                    f"key_rotation announces {vkey!r}, which is not in the trusted keys",
                )
    for finding in _case_findings(parts, records, sla_seconds):
        report.add("finding", "cases", finding)
    return report


def _check_witnesses(
    directory: Path, checkpoint: Checkpoint, keys: Sequence[WitnessKey], minimum: int, report: Report
) -> None:
    """The newest checkpoint must carry ``minimum`` valid cosignatures from distinct ``keys``."""
    where = f"{CHECKPOINTS}/{checkpoint.size:020d}.cosig"
    try:
        text = (directory / where).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    good, problems = verify_cosignatures(checkpoint, text, keys)
    for problem in problems:
        report.add("integrity", where, problem)
    if len(good) < minimum:
        report.add(
            "integrity",
            where,
            f"the newest checkpoint (size {checkpoint.size}) has {len(good)} valid witness cosignature(s); "
            f"{minimum} required: the witnesses did not see it (a rewritten, forked or rolled-back log, "
            "or witnesses that were down)",
        )


def _checkpoints(
    directory: Path, trust: TrustList, origin: str, pinned: Sequence[tuple[str, bytes]], report: Report
) -> tuple[list[tuple[str, Checkpoint]], list[tuple[str, Checkpoint]]]:
    """Stored checkpoints (signature, origin, file name) and pinned ones, each with where it came from."""
    stored: list[tuple[str, Checkpoint]] = []
    folder = directory / CHECKPOINTS
    names_found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    for name in names_found:
        where = f"{CHECKPOINTS}/{name}"
        if name.endswith(".tmp"):
            report.add("warning", where, "left over from an interrupted write")
            continue
        if COSIG_RE.match(name):
            continue  # witness cosignatures: checked with --witness-key
        if name != LATEST and not HISTORY_RE.match(name):
            report.add("warning", where, "unexpected file")
            continue
        try:
            cp = parse_checkpoint((folder / name).read_bytes(), trust, origin)
        except NoteError as exc:
            report.add("integrity", where, str(exc))
            continue
        if name != LATEST and int(name[:20]) != cp.size:
            report.add(
                "integrity", where, f"the file name says size {int(name[:20])} but the checkpoint says {cp.size}"
            )
            continue
        stored.append((where, cp))
    pins: list[tuple[str, Checkpoint]] = []
    for name, data in pinned:
        try:
            pins.append((f"pinned {name}", parse_checkpoint(data, trust, origin)))
        except NoteError as exc:
            report.add("integrity", f"pinned {name}", str(exc))
    return stored, pins


def _merge(
    report: Report, parts: list[Part], ranges: list[tuple[int, int]], path: Path, origin: str, reference: bool = False
) -> dict[int, bytes]:
    """Join the stretches in log order: tree roots, per-person chains, time order, entry problems."""
    prefix = CompactRange()
    roots = {0: prefix.root()}
    listed: list[tuple[int, str]] = []
    late: list[tuple[int, str]] = []
    bad_count = 0
    persons: dict[str, int] = {}
    latest_time = ""
    for part, (begin, end) in zip(parts, ranges):
        for size, nodes in part.snaps.items():
            cr = prefix.copy()
            for level, node in nodes:
                cr.append_subtree(level, node)
            roots[size] = cr.root()
        for level, node in part.nodes:
            prefix.append_subtree(level, node)
        bad_count += part.bad_count
        listed.extend(part.bad)
        for pid, index, prev in part.person_first:  # the chain from the stretches before
            expected = persons.get(pid)
            if prev != expected:
                bad_count += 1
                listed.append((index, person_problem(pid, prev, expected)))
        persons.update(part.person_last)
        if part.first_time is not None and part.first_time[1] < latest_time:
            late.extend(_retime(path, begin, end, part, origin, latest_time, reference))
        else:
            late.extend(part.late)
        latest_time = max(latest_time, part.max_time)
    listed.sort(key=lambda item: item[0])
    events = [(index, 0, what) for index, what in listed[:MAX_LISTED]] + [(index, 1, what) for index, what in late]
    events.sort(key=lambda item: item[:2])
    for index, kind, what in events:
        report.add("integrity" if kind == 0 else "finding", f"{ENTRIES} line {index + 1}", what)
    if bad_count > MAX_LISTED:
        report.add("integrity", ENTRIES, f"... and {bad_count - MAX_LISTED} more entry problems")
    return roots


def _retime(
    path: Path, begin: int, end: int, part: Part, origin: str, latest: str, reference: bool = False
) -> list[tuple[int, str]]:
    """A stretch's backward-time findings when it starts before the time reached in the stretches before it."""
    out: list[tuple[int, str]] = []
    prev, own, stop = latest, "", part.first + part.count
    for index, line in enumerate(read_lines(path, begin, end), part.first):
        if own >= latest:  # from here on the stretch's own running time is the log's
            stop = index
            break
        try:
            ts = checked_entry(line, index, origin, accelerated=not reference)["time"]
        except EntryError:
            continue
        if ts >= prev:
            prev = ts
        elif what := time_finding(ts, prev):
            out.append((index, what))
        own = max(own, ts)
    return out + [(index, what) for index, what in part.late if index >= stop]


def _case_findings(parts: list[Part], records: dict[str, list[CaseRecord]], sla_seconds: int | None) -> list[str]:
    """Approval findings, then each case's findings in order of first appearance."""
    out = [finding for part in parts for finding in part.approvals]
    seen: set[str] = set()
    for part in parts:
        for case in part.cases:
            if case in records:
                if case not in seen:
                    seen.add(case)
                    out.extend(merge_records(records[case]).findings(sla_seconds))
            else:
                out.extend(part.case_findings.get(case, ()))
    return out


def _pieces(path: Path, processes: int | None) -> int:
    """How many processes scan the log: one per CPU, each with at least MIN_BYTES_PER_PROCESS."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if processes is not None:
        return max(1, processes)
    return max(1, min(_cpus(), os.path.getsize(path) // MIN_BYTES_PER_PROCESS))


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _WorkerFailed(Exception):
    """A scanning process died or raised; the log is then scanned in-process."""


@dataclass
class _Failed:
    what: str


def _work(conn: Any, path: Path, begin: int, end: int) -> None:
    """A scanning process: count lines, scan with the first index it is given, send back cases asked for."""
    try:
        stretch = read_stretch(path, begin, end)
        conn.send(len(stretch))
        first, origin, wanted, sla_seconds, cache, records, reference = conn.recv()
        part, book = scan(stretch, first, origin, wanted, sla_seconds, cache, records, reference)
        del stretch
        conn.send(part)
        conn.send({case: book.cases[case] for case in conn.recv()})
    except BaseException as exc:
        try:
            conn.send(_Failed(f"{type(exc).__name__}: {exc}"))
        except Exception:
            pass
    finally:
        conn.close()
        # Everything is sent: leave without freeing the stretch's millions of objects one by one
        # (measured: 0.45 s of a 6.8 s verify of 1,000,000 entries went to the workers' exits).
        os._exit(0)


class _Workers:
    """One forked process per stretch of the log, spoken to over pipes."""

    def __init__(self, path: Path, ranges: list[tuple[int, int]]):
        ctx = multiprocessing.get_context("fork")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        try:
            for begin, end in ranges:
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(
                    target=_work, args=(theirs, path, begin, end), name="offboard-audit-verify", daemon=True
                )
                proc.start()
                theirs.close()
                self.procs.append(proc)
                self.conns.append(mine)
        except BaseException:
            self.close()
            raise

    def _recv(self, conn: Any) -> Any:
        try:
            value = conn.recv()
        except (EOFError, OSError) as exc:
            raise _WorkerFailed(f"a verify process stopped: {exc!r}") from None
        if isinstance(value, _Failed):
            raise _WorkerFailed(value.what)
        return value

    def scan(
        self,
        origin: str,
        wanted: set[int],
        sla_seconds: int | None,
        cache: Path | None,
        records: tuple[Path, int] | None,
        reference: bool = False,
    ) -> list[Part]:
        """Scan every stretch; each learns its first index once all have counted their lines."""
        counts = [self._recv(conn) for conn in self.conns]
        first = 0
        for conn, count in zip(self.conns, counts):
            conn.send((first, origin, wanted, sla_seconds, cache, records, reference))
            first += count
        return [self._recv(conn) for conn in self.conns]

    def records(self, parts: list[Part]) -> dict[str, list[CaseRecord]]:
        """The records of cases that appear in more than one stretch, in log order."""
        where: dict[str, list[int]] = {}
        for k, part in enumerate(parts):
            for case in part.cases:
                where.setdefault(case, []).append(k)
        asks: list[list[str]] = [[] for _ in parts]
        for case, ks in where.items():
            if len(ks) > 1:
                for k in ks:
                    asks[k].append(case)
        for conn, ask in zip(self.conns, asks):
            conn.send(ask)
        answers = [self._recv(conn) for conn in self.conns]
        return {case: [answers[k][case] for k in ks] for case, ks in where.items() if len(ks) > 1}

    def close(self) -> None:
        """Stop and reap the processes."""
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()
