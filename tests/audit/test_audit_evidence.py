"""Per-person evidence: export, offline verification, privacy, and tamper cases 27-30."""

from __future__ import annotations

import base64
import json
import zipfile
from hashlib import sha256
from pathlib import Path

import pytest

from offboard.audit import KeySigner
from offboard.audit._note import checkpoint_text, generate_skey, sign_note


def export(audit_kit, person: str, out: Path, *extra: str) -> Path:
    result = audit_kit.run("evidence", person, "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return out


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rewrite(path: Path, files: dict[str, bytes], *, manifest: bool = True) -> None:
    """Rewrite the bundle; recompute the manifest, as an attacker would."""
    if manifest:
        files = {k: v for k, v in files.items() if k != "MANIFEST.sha256"}
        files["MANIFEST.sha256"] = "".join(f"{sha256(v).hexdigest()}  {k}\n" for k, v in sorted(files.items())).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)


def check(audit_kit, bundle: Path, keys: Path, code: int, *fragments: str) -> None:
    result = audit_kit.run("verify-evidence", str(bundle), "--trusted-keys", str(keys))
    assert result.exit_code == code, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


@pytest.fixture
def bundle(sealed_log, audit_kit, tmp_path) -> Path:
    return export(audit_kit, "p-bob", tmp_path / "bob.zip")


def test_evidence_verifies_and_holds_only_that_person(sealed_log, pinned_keys, bundle, audit_kit):
    check(audit_kit, bundle, pinned_keys, 0, "person p-bob, 4 entries", "result: verified")
    files = read_zip(bundle)
    assert sorted(files) == sorted(
        [
            "README.md",
            "MANIFEST.sha256",
            "entries.jsonl",
            "checkpoint.note",
            "keys.txt",
            "summary.json",
            "summary.csv",
            "summary.md",
        ]
        + [f"proofs/{s}.tlog-proof" for s in (4, 5, 6, 7)]
    )
    everything = b"".join(files.values())
    for other in ("p-alice", "p-carol", "case-0", "case-2"):
        assert other.encode() not in everything
    log_lines = (sealed_log / "entries.jsonl").read_bytes().splitlines()
    assert files["entries.jsonl"].splitlines() == log_lines[4:8]  # byte-identical
    summary = json.loads(files["summary.json"])
    assert summary["person"] == "p-bob" and summary["checkpoint"]["size"] == 12
    case = summary["cases"][0]
    assert case["status"] == "complete" and case["sla_met"] is True and case["elapsed_ms"] == 300000
    assert {a["system"]: a["reference"] for a in case["accounts"]} == {
        "entra": "ref-case-1-entra",
        "github": "ref-case-1-github",
    }
    assert b"p-bob-entra,p-bob@entra.example,disable_account,verified" in files["summary.csv"]
    assert "PRIVATE" not in everything.decode()
    data = json.loads(
        audit_kit.run("verify-evidence", str(bundle), "--trusted-keys", str(pinned_keys), "--json").output
    )
    assert data["exit_code"] == 0 and data["person"] == "p-bob"


def test_evidence_by_employee_id_and_seals_unsealed_entries(sealed_log, pinned_keys, audit_kit, tmp_path):
    with audit_kit.open_log(sealed_log) as log:
        audit_kit.write_case(log, "p-dave", "case-3")  # not sealed
    out = export(audit_kit, "E-p-dave", tmp_path / "dave.zip")
    check(audit_kit, out, pinned_keys, 0, "person p-dave")
    assert json.loads(read_zip(out)["summary.json"])["checkpoint"]["size"] == 16


def test_evidence_of_a_sealed_log_does_not_read_the_log_to_know_it_is_sealed(
    sealed_log, pinned_keys, audit_kit, tmp_path, monkeypatch
):
    """The seal check asks the per-person index where the sealed entries end and reads only what follows;
    counting every line of a million-entry log cost more than the whole indexed export."""
    from offboard.cli import _audit

    def whole_log(log):
        raise AssertionError("the whole log was read to find out whether it is sealed")

    monkeypatch.setattr(_audit, "_lines", whole_log)
    out = export(audit_kit, "p-bob", tmp_path / "bob.zip")
    check(audit_kit, out, pinned_keys, 0, "person p-bob")
    with audit_kit.open_log(sealed_log) as log:  # a complete line after the sealed ones: the count decides
        audit_kit.write_case(log, "p-dave", "case-3")
    with pytest.raises(AssertionError, match="whole log was read"):
        export(audit_kit, "p-dave", tmp_path / "dave.zip")


def test_unknown_person_is_a_clear_error(sealed_log, audit_kit, tmp_path):
    result = audit_kit.run("evidence", "nobody", "--out", str(tmp_path / "x.zip"))
    assert result.exit_code == 2 and "no audit entries for person 'nobody'" in result.output


def test_sla_finding_exits_2(sealed_log, pinned_keys, audit_kit, tmp_path):
    out = export(audit_kit, "p-bob", tmp_path / "b.zip", "--sla", "1m")
    check(audit_kit, out, pinned_keys, 2, "SLA missed")
    result = audit_kit.run("verify-evidence", str(out), "--trusted-keys", str(pinned_keys), "--sla", "24h")
    assert result.exit_code == 0, result.output


def test_untrusted_keys_fail(bundle, audit_kit, tmp_path):
    keys = tmp_path / "other-keys.txt"
    keys.write_text(KeySigner(generate_skey("test.example/offboard/audit/v1")).vkey + "\n")
    check(audit_kit, bundle, keys, 1, "no signature from a trusted key")


# -- 27: entries modified, added, removed ---------------------------------------------------------


def test_27_entry_line_modified(bundle, pinned_keys, audit_kit):
    files = read_zip(bundle)
    files["entries.jsonl"] = files["entries.jsonl"].replace(b'"attempts":1', b'"attempts":2', 1)
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 1, "does not lead to the checkpoint root")


def test_27_entry_of_another_person_added(sealed_log, bundle, pinned_keys, audit_kit, tmp_path):
    carol = read_zip(export(audit_kit, "p-carol", tmp_path / "carol.zip"))
    files = read_zip(bundle)
    files["entries.jsonl"] += carol["entries.jsonl"].splitlines(keepends=True)[0]
    files["proofs/8.tlog-proof"] = carol["proofs/8.tlog-proof"]  # a perfectly valid proof
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 1, "about person p-carol, not p-bob")


@pytest.mark.parametrize("which", [0, 1, 2])
def test_27_entry_of_the_person_removed(bundle, pinned_keys, audit_kit, which):
    files = read_zip(bundle)
    lines = files["entries.jsonl"].splitlines(keepends=True)
    seq = json.loads(lines[which])["seq"]
    del lines[which]
    del files[f"proofs/{seq}.tlog-proof"]
    files["entries.jsonl"] = b"".join(lines)
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 1, "missing or out of order")


# -- 28: tlog-proof tampering ---------------------------------------------------------------------


def _proof_edit(text: str, how: str) -> str:
    head, checkpoint = text.split("\n\n", 1)
    lines = head.split("\n")
    if how == "wrong index":
        lines[1] = "index 7"
    elif how == "altered hash":
        raw = bytearray(base64.b64decode(lines[2]))
        raw[0] ^= 1
        lines[2] = base64.b64encode(bytes(raw)).decode()
    elif how == "extra path line":
        lines.append(lines[-1])
    elif how == "missing path line":
        lines.pop()
    elif how == "index beyond size":
        lines[1] = "index 12"
    elif how == "bad header":
        lines[0] = "c2sp.org/tlog-proof@v2"
    elif how == "extra line":
        lines.insert(1, "extra " + base64.b64encode(b"index 5").decode())
    return "\n".join(lines) + "\n\n" + checkpoint


@pytest.mark.parametrize(
    "how", ["wrong index", "altered hash", "extra path line", "missing path line", "index beyond size", "bad header"]
)
def test_28_proof_tampered(bundle, pinned_keys, audit_kit, how):
    files = read_zip(bundle)
    files["proofs/5.tlog-proof"] = _proof_edit(files["proofs/5.tlog-proof"].decode(), how).encode()
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 1, "proofs/5.tlog-proof")


def test_28_extra_line_is_ignored_not_trusted(bundle, pinned_keys, audit_kit):
    files = read_zip(bundle)
    files["proofs/5.tlog-proof"] = _proof_edit(files["proofs/5.tlog-proof"].decode(), "extra line").encode()
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 0)


def test_manifest_mismatch_and_unexpected_files(bundle, pinned_keys, audit_kit):
    files = read_zip(bundle)
    files["notes.txt"] = b"hello"
    rewrite(bundle, files, manifest=False)
    result = audit_kit.run("verify-evidence", str(bundle), "--trusted-keys", str(pinned_keys))
    assert result.exit_code == 1 and "unexpected file" in result.output and "MANIFEST" in result.output


# -- 29: checkpoint swapped ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["another log", "unsigned", "forged"])
def test_29_checkpoint_swapped(sealed_log, bundle, pinned_keys, audit_kit, how):
    files = read_zip(bundle)
    original = files["checkpoint.note"].decode()
    body = original.split("\n\n")[0] + "\n"
    if how == "another log":
        other = "other.example/audit/v1"
        note = sign_note(checkpoint_text(other, 12, bytes(32)), [KeySigner(generate_skey(other))])
    elif how == "unsigned":
        note = body + "\n"
    else:
        note = sign_note(body, [KeySigner(generate_skey("test.example/offboard/audit/v1"))])
    for name in list(files):
        if name.startswith("proofs/"):
            files[name] = files[name].replace(original.encode(), note.encode())
    files["checkpoint.note"] = note.encode()
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 1, "checkpoint.note")


def test_29_checkpoint_inside_one_proof_swapped(bundle, pinned_keys, audit_kit):
    files = read_zip(bundle)
    original = files["checkpoint.note"].decode()
    forged = sign_note(original.split("\n\n")[0] + "\n", [KeySigner(generate_skey("test.example/offboard/audit/v1"))])
    files["proofs/6.tlog-proof"] = files["proofs/6.tlog-proof"].replace(original.encode(), forged.encode())
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 1, "its checkpoint differs")


# -- 30: summaries edited --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,old,new",
    [
        ("summary.csv", b"verified", b"verifiet"),
        ("summary.md", b"SLA met: yes", b"SLA met: yes!"),
        ("summary.json", b'"status":"complete"', b'"status":"completed"'),
        ("summary.json", b'"sla_seconds":86400', b'"sla_seconds":864000'),
    ],
)
def test_30_summary_edited(bundle, pinned_keys, audit_kit, name, old, new):
    files = read_zip(bundle)
    assert old in files[name]
    files[name] = files[name].replace(old, new, 1)
    rewrite(bundle, files)
    check(audit_kit, bundle, pinned_keys, 1, name)


# -- pinned checkpoints and consistency proofs in the bundle (#18) ----------------------------


def check_pinned(audit_kit, bundle: Path, keys: Path, pin: Path, code: int, *fragments: str) -> None:
    result = audit_kit.run("verify-evidence", str(bundle), "--trusted-keys", str(keys), "--pinned", str(pin))
    assert result.exit_code == code, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def grow(sealed_log, audit_kit) -> None:
    with audit_kit.open_log(sealed_log) as log:
        audit_kit.write_case(log, "p-dave", "case-3")
        log.checkpoint()


def test_bundle_carries_consistency_proof_from_a_pin(sealed_log, pinned_keys, audit_kit, tmp_path):
    pin = tmp_path / "pin.note"
    pin.write_bytes((sealed_log / "checkpoints" / f"{8:020d}.note").read_bytes())
    grow(sealed_log, audit_kit)
    bundle = export(audit_kit, "p-bob", tmp_path / "bob.zip", "--pinned", str(pin))
    files = read_zip(bundle)
    assert "consistency/8.txt" in files and files["consistency/8.txt"].count(b"\n") >= 1
    check_pinned(audit_kit, bundle, pinned_keys, pin, 0, "result: verified")
    check(audit_kit, bundle, pinned_keys, 0)  # the proof is harmless without a pin


def test_stale_bundle_against_a_newer_pin(sealed_log, pinned_keys, bundle, audit_kit, tmp_path):
    """Defect 5: verify-evidence had no --pinned; a bundle older than the auditor's pin passed."""
    grow(sealed_log, audit_kit)
    pin = tmp_path / "pin.note"
    pin.write_bytes((sealed_log / "checkpoints" / "latest.note").read_bytes())
    check_pinned(audit_kit, bundle, pinned_keys, pin, 1, "stale bundle", "older than the pinned one")


def test_pin_without_proof_in_the_bundle(sealed_log, pinned_keys, bundle, audit_kit, tmp_path):
    pin = tmp_path / "pin.note"
    pin.write_bytes((sealed_log / "checkpoints" / f"{4:020d}.note").read_bytes())
    check_pinned(audit_kit, bundle, pinned_keys, pin, 1, "no consistency/4.txt proof")


def test_consistency_proof_tampered(sealed_log, pinned_keys, audit_kit, tmp_path):
    pin = tmp_path / "pin.note"
    pin.write_bytes((sealed_log / "checkpoints" / f"{4:020d}.note").read_bytes())
    bundle = export(audit_kit, "p-bob", tmp_path / "bob.zip", "--pinned", str(pin))
    files = read_zip(bundle)
    first = base64.b64decode(files["consistency/4.txt"].split(b"\n")[0])
    files["consistency/4.txt"] = (
        base64.b64encode(bytes([first[0] ^ 1]) + first[1:])
        + b"\n"
        + b"\n".join(files["consistency/4.txt"].split(b"\n")[1:])
    )
    rewrite(bundle, files)
    check_pinned(audit_kit, bundle, pinned_keys, pin, 1, "fork")


def test_export_against_a_pin_the_log_forked_from(sealed_log, audit_kit, tmp_path):
    pin = tmp_path / "pin.note"
    pin.write_text(
        sign_note(
            checkpoint_text(audit_kit.origin, 8, bytes(32)), [KeySigner((sealed_log / "signing.key").read_text())]
        )
    )
    result = audit_kit.run("evidence", "p-bob", "--out", str(tmp_path / "b.zip"), "--pinned", str(pin))
    assert result.exit_code == 2 and "fork" in result.output, result.output
    assert not (tmp_path / "b.zip").exists()
