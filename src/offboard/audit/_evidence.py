"""Per-person evidence bundles: that person's entries, a tlog-proof each, the checkpoint, a summary."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

from ._cases import CaseBook
from ._entry import EntryError, _encode, check_common, parse_entry
from ._index import IndexedEvidence, index_evidence
from ._log import CHECKPOINTS, ENTRIES, LATEST, AuditError
from ._merkle import Tree, leaf_hash, verify_consistency, verify_inclusion
from ._note import Checkpoint, NoteError, TrustList, b64, format_proof, parse_checkpoint, parse_proof, unb64
from ._witness import WitnessKey, verify_cosignatures

__all__ = ["summarize", "build_evidence", "verify_evidence", "EvidenceReport", "find_person"]

FORMAT = "offboard-evidence/v1"
FIXED = (
    "README.md",
    "MANIFEST.sha256",
    "entries.jsonl",
    "checkpoint.note",
    "keys.txt",
    "summary.json",
    "summary.csv",
    "summary.md",
)
CSV_COLUMNS = (
    "case",
    "system",
    "account_id",
    "account_name",
    "kind",
    "result",
    "completed_at",
    "verified",
    "reference",
    "termination_at",
    "deadline",
    "elapsed_ms",
    "sla_met",
    "seq",
)
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _person_id(obj: dict[str, Any]) -> str | None:
    person = obj.get("person")
    return person.get("id") if isinstance(person, dict) and isinstance(person.get("id"), str) else None


def summarize(person: str, checkpoint: Checkpoint, sla_seconds: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary an auditor reads; recomputable from the entries alone."""
    book = CaseBook(keep=True)
    for obj in entries:
        book.add(obj)
    cases = []
    for record in book.cases.values():
        accounts = []
        for (system, account, kind), action in sorted(record.final().items()):
            action = action or {}
            found = action.get("verification")
            verification: dict[str, Any] = found if isinstance(found, dict) else {}
            name = (action.get("account") or {}).get("name") if action else record.names.get((system, account, kind))
            accounts.append(
                {
                    "system": system,
                    "account_id": account,
                    "account_name": name,
                    "kind": kind,
                    "result": action.get("result"),
                    "requested_at": action.get("requested_at"),
                    "responded_at": action.get("responded_at"),
                    "completed_at": action.get("responded_at") if action.get("result") == "verified" else None,
                    "verified": verification.get("ok"),
                    "observed": verification.get("observed"),
                    "reference": action.get("reference"),
                    "seq": action.get("seq"),
                }
            )
        opened, closed = record.opened or {}, record.closed or {}
        elapsed = record.elapsed_ms()
        cases.append(
            {
                "case": record.case,
                "opened_seq": opened.get("seq"),
                "opened_at": opened.get("time"),
                "trigger": opened.get("trigger"),
                "policy": opened.get("policy"),
                "termination_at": record.termination_at(),
                "status": closed.get("status", "open"),
                "closed_at": closed.get("time"),
                "last_verified_at": record.last_verified_at(),
                "elapsed_ms": elapsed,
                "deadline": record.deadline(sla_seconds),
                "sla_met": None if elapsed is None else elapsed <= sla_seconds * 1000,
                "accounts": accounts,
            }
        )
    return {
        "format": FORMAT,
        "person": person,
        "log": checkpoint.origin,
        "checkpoint": {"size": checkpoint.size, "root": b64(checkpoint.root)},
        "sla_seconds": sla_seconds,
        "entries": [obj["seq"] for obj in entries],
        "cases": cases,
        "findings": book.findings(sla_seconds),
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render(summary: dict[str, Any]) -> dict[str, bytes]:
    """summary.json, summary.csv and summary.md, byte for byte."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    md = [
        f"# Deprovisioning evidence for person {summary['person']}",
        "",
        f"Log `{summary['log']}`, checkpoint size {summary['checkpoint']['size']}, "
        f"root `{summary['checkpoint']['root']}`. SLA {summary['sla_seconds']} s.",
    ]
    for case in summary["cases"]:
        md += [
            "",
            f"## Case {case['case']}",
            "",
            f"- status: {case['status']}; trigger: {_cell(case['trigger'])}; policy: {_cell(case['policy'])}",
            f"- termination: {_cell(case['termination_at'])}; last verified action: {_cell(case['last_verified_at'])}",
            f"- elapsed: {_cell(case['elapsed_ms'])} ms; deadline: {_cell(case['deadline'])}; "
            f"SLA met: {_cell(case['sla_met'])}",
            "",
            "| system | account | action | result | completed at | verified | reference | seq |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in case["accounts"]:
            writer.writerow(
                [
                    case["case"],
                    row["system"],
                    row["account_id"],
                    _cell(row["account_name"]),
                    row["kind"],
                    _cell(row["result"]),
                    _cell(row["completed_at"]),
                    _cell(row["verified"]),
                    _cell(row["reference"]),
                    _cell(case["termination_at"]),
                    _cell(case["deadline"]),
                    _cell(case["elapsed_ms"]),
                    _cell(case["sla_met"]),
                    _cell(row["seq"]),
                ]
            )
            account = row["account_id"] + (f" ({row['account_name']})" if row["account_name"] else "")
            cells = [
                row["system"],
                account,
                row["kind"],
                _cell(row["result"]),
                _cell(row["completed_at"]),
                _cell(row["verified"]),
                _cell(row["reference"]),
                _cell(row["seq"]),
            ]
            md.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    md += ["", "## Findings", ""] + ([f"- {f}" for f in summary["findings"]] or ["None."])
    return {
        "summary.json": _encode(summary).encode() + b"\n",
        "summary.csv": out.getvalue().encode(),
        "summary.md": ("\n".join(md) + "\n").encode(),
    }


def find_person(lines: list[bytes], person: str) -> str:
    """The person.id for ``person`` (a person id, or an employee_id in a case_opened entry)."""
    needle = json.dumps(person, ensure_ascii=False).encode()
    fallback = None
    for line in lines:
        if needle not in line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        pid = _person_id(obj)
        if pid == person:
            return pid
        if fallback is None and pid and obj.get("person", {}).get("employee_id") == person:
            fallback = pid
    if fallback is None:
        raise AuditError(f"no audit entries for person {person!r}")
    return fallback


def _readme(summary: dict[str, Any], checkpoint: Checkpoint) -> str:
    keys = "\n".join(f"- `{v.vkey}` (SHA-256 of the public key: `{v.fingerprint}`)" for v in checkpoint.signers)
    return f"""# Evidence bundle for person {summary["person"]}

This bundle holds every entry that the audit log `{summary["log"]}` recorded for this person,
byte for byte, each with a Merkle inclusion proof (C2SP tlog-proof) against one signed
checkpoint (tree size {summary["checkpoint"]["size"]}). It contains no other person's entries.

Keys that signed the checkpoint (confirm these out of band before trusting the bundle):

{keys}

Verify with: `offboard audit verify-evidence THIS.zip --trusted-keys trusted-keys.txt`
or independently, following docs/audit-format.md: check the checkpoint signature, fold each
proof from SHA-256(0x00 || line) to the checkpoint root, check the person_prev chain, and
recompute summary.json, summary.csv and summary.md from entries.jsonl.

keys.txt, this README and MANIFEST.sha256 are informative; the proofs and the signature are what count.
"""


def format_consistency(proof: list[bytes]) -> bytes:
    """``consistency/<m>.txt``: the RFC 9162 proof from size m to the bundle's checkpoint, one base64 hash a line."""
    return "".join(b64(p) + "\n" for p in proof).encode()


def parse_consistency(data: bytes, name: str) -> list[bytes]:
    """The hashes of a ``consistency/<m>.txt`` file (each 32 bytes, strict base64)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise NoteError(f"{name} is not ASCII") from None
    if text and not text.endswith("\n"):
        raise NoteError(f"{name}: the last line has no newline")
    hashes = [unb64(line, f"{name} line {i}") for i, line in enumerate(text.split("\n")[:-1], 1)]
    if any(len(h) != 32 for h in hashes):
        raise NoteError(f"{name}: every line must be a 32-byte hash")
    return hashes


def build_evidence(
    directory: Path,
    person: str,
    out: Path,
    trust: TrustList,
    *,
    sla_seconds: int = 86400,
    pinned: Sequence[Checkpoint] = (),
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """Write the evidence zip for ``person`` against the latest checkpoint; returns the summary.

    The entries are found through the person index (``index/``, see ``_index.py``) when it agrees
    with everything read, else by scanning the whole log; ``notes`` then says why.

    For each ``pinned`` checkpoint (an auditor's earlier copy) the bundle carries
    ``consistency/<size>.txt``, the proof that the log only grew from it to the bundle's checkpoint."""
    directory = Path(directory)
    try:
        checkpoint = parse_checkpoint((directory / CHECKPOINTS / LATEST).read_bytes(), trust)
    except FileNotFoundError:
        raise AuditError("the audit log has no checkpoint yet") from None
    except NoteError as exc:
        raise AuditError(f"the latest checkpoint does not verify: {exc}") from None
    for pin in pinned:
        if pin.size > checkpoint.size:
            raise AuditError(
                f"the pinned checkpoint has size {pin.size} but the log's latest only {checkpoint.size}: rollback"
            )
    found = index_evidence(
        directory, person, checkpoint.origin, checkpoint.size, checkpoint.root, [(p.size, p.root) for p in pinned]
    )
    if isinstance(found, str):  # no usable index: scan the log
        if notes is not None:
            notes.append(f"the person index was not used ({found}); the whole log was scanned")
        found = _scan_evidence(directory, person, checkpoint, pinned)
    pid, chosen = found.person, found.chosen
    summary = summarize(pid, checkpoint, sla_seconds, [obj for _, obj in chosen])
    files: dict[str, bytes] = {
        "entries.jsonl": b"".join(line + b"\n" for line, _ in chosen),
        "checkpoint.note": checkpoint.note.encode(),
        "keys.txt": "".join(f"{v.vkey}\n" for v in checkpoint.signers).encode(),
        "README.md": _readme(summary, checkpoint).encode(),
        **render(summary),
    }
    cosigs = directory / CHECKPOINTS / f"{checkpoint.size:020d}.cosig"
    if cosigs.exists():  # witness cosignatures of this checkpoint
        files["checkpoint.cosig"] = cosigs.read_bytes()
    for pin in pinned:
        files[f"consistency/{pin.size}.txt"] = format_consistency(found.consistency[pin.size])
    for _line, obj in chosen:
        seq = obj["seq"]
        files[f"proofs/{seq}.tlog-proof"] = format_proof(seq, found.proofs[seq], checkpoint.note).encode()
    files["MANIFEST.sha256"] = "".join(f"{sha256(v).hexdigest()}  {k}\n" for k, v in sorted(files.items())).encode()
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, files[name])
    tmp.replace(out)
    return summary


def _scan_evidence(
    directory: Path, person: str, checkpoint: Checkpoint, pinned: Sequence[Checkpoint]
) -> IndexedEvidence:
    """The person's entries and proofs from the whole log: hash every line, check the checkpoint root."""
    data = (directory / ENTRIES).read_bytes()
    lines = data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]
    pid = find_person(lines, person)
    if len(lines) < checkpoint.size:
        raise AuditError("the log is shorter than its latest checkpoint; run 'offboard audit verify'")
    tree = Tree([leaf_hash(line) for line in lines[: checkpoint.size]])
    if tree.root() != checkpoint.root:
        raise AuditError("the entries do not match the latest checkpoint; run 'offboard audit verify'")
    needle = json.dumps(pid, ensure_ascii=False).encode()
    chosen: list[tuple[bytes, dict[str, Any]]] = []
    for index, line in enumerate(lines):
        if needle in line:
            obj = parse_entry(line)
            if _person_id(obj) == pid:
                if index >= checkpoint.size:
                    raise AuditError(f"entry {index} for {pid} is not sealed yet: checkpoint the log first")
                chosen.append((line, obj))
    consistency: dict[int, list[bytes]] = {}
    for pin in pinned:
        if tree.root(pin.size) != pin.root:
            raise AuditError(f"fork: the log's tree at size {pin.size} has a different root than the pinned checkpoint")
        consistency[pin.size] = tree.consistency_proof(pin.size, checkpoint.size)
    proofs = {obj["seq"]: tree.inclusion_proof(obj["seq"], checkpoint.size) for _, obj in chosen}
    return IndexedEvidence(pid, chosen, proofs, consistency)


@dataclass
class EvidenceReport:
    """What ``verify_evidence`` found."""

    person: str | None = None
    checkpoint: Checkpoint | None = None
    entries: int = 0
    problems: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    @property
    def exit_code(self) -> int:
        """0 verified, 1 integrity failure, 2 verified with compliance findings."""
        return 1 if self.problems else (2 if self.findings else 0)


def verify_evidence(
    path: Path,
    trust: TrustList,
    sla_seconds: int | None = None,
    pinned: Sequence[tuple[str, Checkpoint]] = (),
    witness_keys: Sequence[WitnessKey] = (),
    min_witnesses: int = 0,
) -> EvidenceReport:
    """Check every proof, the signature, the person chain and the summaries; ``sla_seconds`` re-judges the SLA.

    Each ``pinned`` (name, checkpoint) must be proved an ancestor of the bundle's checkpoint by
    the bundle's ``consistency/<size>.txt``; a pin newer than the bundle makes it stale (exit 1)."""
    report = EvidenceReport()
    problem = report.problems.append
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        problem(f"{path}: not a readable zip file ({exc})")
        return report
    with zf:
        names = zf.namelist()
        if len(set(names)) != len(names):
            problem("the zip holds two files with the same name")
            return report
        files = {name: zf.read(name) for name in names}
    for name in FIXED:
        if name not in files:
            problem(f"{name} is missing")
    if report.problems:
        return report
    try:
        checkpoint = parse_checkpoint(files["checkpoint.note"], trust)
    except NoteError as exc:
        problem(f"checkpoint.note: {exc}")
        return report
    report.checkpoint = checkpoint
    data = files["entries.jsonl"]
    if not data.endswith(b"\n"):
        problem("entries.jsonl: empty, or the last line has no newline")
        return report
    entries: list[dict[str, Any]] = []
    expected = set(FIXED)
    previous: int | None = None
    for number, line in enumerate(data[:-1].split(b"\n"), 1):
        where = f"entries.jsonl line {number}"
        try:
            obj = parse_entry(line)
            seq = obj.get("seq")
            check_common(obj, seq if isinstance(seq, int) else -1, checkpoint.origin)
        except EntryError as exc:
            problem(f"{where}: {exc}")
            continue
        pid = _person_id(obj)
        if pid is None:
            problem(f"{where}: the entry names no person")
            continue
        report.person = report.person or pid
        if pid != report.person:
            problem(f"{where}: the entry is about person {pid}, not {report.person}")
        if obj.get("person_prev") != previous:
            problem(
                f"{where}: person_prev is {obj.get('person_prev')!r}, expected {previous!r}: "
                "an entry of this person is missing or out of order"
            )
        previous = seq
        name = f"proofs/{seq}.tlog-proof"
        expected.add(name)
        try:
            proof = parse_proof(files[name].decode("utf-8"))
        except KeyError:
            problem(f"{name} is missing")
            continue
        except (NoteError, UnicodeDecodeError) as exc:
            problem(f"{name}: {exc}")
            continue
        if proof.index != seq:
            problem(f"{name}: index {proof.index} is not the entry's seq {seq}")
        if proof.checkpoint.encode() != files["checkpoint.note"]:
            problem(f"{name}: its checkpoint differs from checkpoint.note")
        elif not verify_inclusion(leaf_hash(line), proof.index, checkpoint.size, proof.path, checkpoint.root):
            problem(f"{name}: the inclusion proof does not lead to the checkpoint root")
        entries.append(obj)
    report.entries = len(entries)
    if "checkpoint.cosig" in files:
        expected.add("checkpoint.cosig")
    if witness_keys or min_witnesses:
        text = files.get("checkpoint.cosig", b"").decode("utf-8", "replace")
        good, bad = verify_cosignatures(checkpoint, text, witness_keys)
        report.problems.extend(f"checkpoint.cosig: {b}" for b in bad)
        if len(good) < min_witnesses:
            problem(
                f"checkpoint.cosig: {len(good)} valid witness cosignature(s) of the checkpoint; "
                f"{min_witnesses} required"
            )
    proofs: dict[int, list[bytes]] = {}
    for name in sorted(files):
        if name.startswith("consistency/"):
            size_text = name[len("consistency/") : -len(".txt")]
            if not name.endswith(".txt") or not size_text.isdigit() or str(int(size_text)) != size_text:
                continue  # reported as unexpected below
            expected.add(name)
            try:
                proofs[int(size_text)] = parse_consistency(files[name], name)
            except NoteError as exc:
                problem(str(exc))
            if int(size_text) > checkpoint.size:
                problem(f"{name}: size {size_text} is beyond the bundle's checkpoint ({checkpoint.size})")
    for where, pin in pinned:
        if pin.origin != checkpoint.origin:
            problem(f"pinned {where}: its origin {pin.origin!r} is not the bundle's {checkpoint.origin!r}")
        elif pin.size > checkpoint.size:
            problem(
                f"pinned {where}: stale bundle: its checkpoint (size {checkpoint.size}) is older than the pinned one "
                f"(size {pin.size}); ask for a bundle exported with 'offboard audit evidence --pinned'"
            )
        elif pin.size not in proofs:
            problem(f"pinned {where}: the bundle has no consistency/{pin.size}.txt proof from the pinned size")
        elif not verify_consistency(pin.size, checkpoint.size, pin.root, checkpoint.root, proofs[pin.size]):
            problem(f"pinned {where}: fork: consistency/{pin.size}.txt does not prove the log only grew since the pin")
    for name in sorted(set(files) - expected):
        problem(f"{name}: unexpected file")
    manifest = "".join(f"{sha256(v).hexdigest()}  {k}\n" for k, v in sorted(files.items()) if k != "MANIFEST.sha256")
    if files["MANIFEST.sha256"].decode("utf-8", "replace") != manifest:
        problem("MANIFEST.sha256 does not match the files")
    try:
        claimed = json.loads(files["summary.json"])
        bundle_sla = claimed["sla_seconds"]
        if type(bundle_sla) is not int or bundle_sla <= 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        problem("summary.json is unreadable or has no positive integer sla_seconds")
        return report
    if report.problems or report.person is None:
        return report
    summary = summarize(report.person, checkpoint, bundle_sla, entries)
    for name, content in render(summary).items():
        if files[name] != content:
            problem(f"{name} differs from the summary recomputed from the entries")
    if sla_seconds is not None and sla_seconds != bundle_sla:
        summary = summarize(report.person, checkpoint, sla_seconds, entries)
    report.summary = summary
    report.findings = list(summary["findings"])
    return report
