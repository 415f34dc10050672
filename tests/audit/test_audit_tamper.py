"""``offboard audit verify`` against every tamper case of audit-design.md section 9 (items 1-19) and the compliance cases."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest

from offboard.audit import AuditLog, KeySigner
from offboard.audit._merkle import Tree, leaf_hash
from offboard.audit._note import checkpoint_text, generate_skey, sign_note


def lines_of(directory: Path) -> list[bytes]:
    return (directory / "entries.jsonl").read_bytes().splitlines()


def write_lines(directory: Path, lines: list[bytes], *, fix_cache: bool = True) -> None:
    (directory / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))
    if fix_cache:  # an attacker keeps the optional cache consistent, so detection must come from the tree
        (directory / "leafhashes.bin").write_bytes(b"".join(leaf_hash(line) for line in lines))


def latest(directory: Path) -> Path:
    return directory / "checkpoints" / "latest.note"


def set_checkpoint(directory: Path, note: str, size: int) -> None:
    latest(directory).write_text(note)
    (directory / "checkpoints" / f"{size:020d}.note").write_text(note)


def local_signer(directory: Path) -> KeySigner:
    return KeySigner((directory / "signing.key").read_text())


def expect(result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def _retime(line: bytes) -> bytes:
    """Change one digit of the entry's time: still canonical and well-formed, only the hash changes."""
    return re.sub(
        rb'("time":"[^"]*)(\d)(Z")', lambda m: m[1] + str((int(m[2]) + 1) % 10).encode() + m[3], line, count=1
    )


def test_untouched_log_verifies(sealed_log, pinned_keys, audit_kit):
    result = audit_kit.run("verify", "--trusted-keys", str(pinned_keys), "--sla", "24h")
    expect(result, 0, "result: intact", "latest checkpoint")
    data = json.loads(audit_kit.run("verify", "--json").output)
    assert data["exit_code"] == 0 and data["entries"] == len(lines_of(sealed_log))


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_01_one_byte_changed(sealed_log, audit_kit, where):
    lines = lines_of(sealed_log)
    i = {"first": 0, "middle": len(lines) // 2, "last": len(lines) - 1}[where]
    lines[i] = _retime(lines[i])
    write_lines(sealed_log, lines)
    expect(audit_kit.run("verify"), 1, "root hash does not match")


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_02_entry_deleted(sealed_log, audit_kit, where):
    lines = lines_of(sealed_log)
    del lines[{"first": 0, "middle": len(lines) // 2, "last": len(lines) - 1}[where]]
    write_lines(sealed_log, lines)
    result = audit_kit.run("verify")
    expect(result, 1)
    assert "'seq'" in result.output or "covers" in result.output


def test_03_tail_truncated(sealed_log, audit_kit):
    write_lines(sealed_log, lines_of(sealed_log)[:-3])
    expect(audit_kit.run("verify"), 1, "covers 12 entries but the log has only 9")


def test_04_unsealed_tail_warns_fails_strict_and_sealing_fixes(sealed_log, audit_kit):
    log = audit_kit.open_log(sealed_log)
    log.append("approval", {"case": "case-1", "approver": "ciso", "reason": "late", "scope": "case"})
    expect(audit_kit.run("verify"), 0, "not sealed yet")
    expect(audit_kit.run("verify", "--strict"), 1, "not sealed yet")
    log.checkpoint()
    log.close()
    expect(audit_kit.run("verify", "--strict"), 0)


@pytest.mark.parametrize("how", ["swap", "duplicate", "move"])
def test_05_reorder_replay_move(sealed_log, audit_kit, how):
    lines = lines_of(sealed_log)
    if how == "swap":
        lines[3], lines[4] = lines[4], lines[3]
    elif how == "duplicate":
        lines.insert(6, lines[5])
    else:
        lines.insert(9, lines.pop(2))
    write_lines(sealed_log, lines)
    expect(audit_kit.run("verify"), 1, "'seq' is")


def test_06_entry_from_another_log(sealed_log, audit_kit, tmp_path):
    other_origin = "other.example/audit/v1"
    with AuditLog.open(tmp_path / "other", other_origin, signer=KeySigner(generate_skey(other_origin))) as other:
        audit_kit.write_case(other, "p-alice", "case-x")
    lines = lines_of(sealed_log)
    lines[2] = lines_of(tmp_path / "other")[2]
    write_lines(sealed_log, lines)
    expect(audit_kit.run("verify"), 1, "not this log's origin")


def test_07_rewritten_and_resigned_with_unknown_key(sealed_log, pinned_keys, audit_kit, tmp_path):
    forged = tmp_path / "forged"
    with AuditLog.open(forged, audit_kit.origin, signer=KeySigner(generate_skey(audit_kit.origin))) as log:
        audit_kit.write_case(log, "p-alice", "case-0", results={"github": "verified"})
        log.checkpoint()
    shutil.rmtree(sealed_log)
    shutil.copytree(forged, sealed_log)  # including its own trusted-keys.txt
    expect(audit_kit.run("verify", "--trusted-keys", str(pinned_keys)), 1, "no signature from a trusted key")


@pytest.mark.parametrize("field", ["size", "root"])
def test_08_checkpoint_edited_without_resigning(sealed_log, audit_kit, field):
    text = latest(sealed_log).read_text()
    origin, size, root, rest = text.split("\n", 3)
    if field == "size":
        size = str(int(size) - 1)
    else:
        root = base64.b64encode(bytes(32)).decode()
    latest(sealed_log).write_text("\n".join([origin, size, root, rest]))
    expect(audit_kit.run("verify"), 1, "does not verify")


def test_09_signature_corrupted_or_wrong_key_id(sealed_log, audit_kit):
    text = latest(sealed_log).read_text()
    head, sig = text.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[20] ^= 0x40
    latest(sealed_log).write_text(f"{head} {base64.b64encode(bytes(raw)).decode()}\n")
    expect(audit_kit.run("verify"), 1, "does not verify")
    raw = bytearray(base64.b64decode(sig))
    raw[0] ^= 0x01  # key ID no longer matches: the signature is ignored, so none is left
    latest(sealed_log).write_text(f"{head} {base64.b64encode(bytes(raw)).decode()}\n")
    expect(audit_kit.run("verify"), 1, "no signature from a trusted key")


def test_10_known_key_bad_signature_next_to_a_good_one(sealed_log, audit_kit, tmp_path):
    second = KeySigner(generate_skey(audit_kit.origin))
    keys = tmp_path / "two-keys.txt"
    keys.write_text((sealed_log / "trusted-keys.txt").read_text() + second.vkey + "\n")
    lines = lines_of(sealed_log)
    note = sign_note(
        checkpoint_text(audit_kit.origin, len(lines), Tree([leaf_hash(x) for x in lines]).root()),
        [local_signer(sealed_log), second],
    )
    expect(audit_kit.run("verify", "--trusted-keys", str(keys)), 0)
    head, sig = note.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[30] ^= 1
    set_checkpoint(sealed_log, f"{head} {base64.b64encode(bytes(raw)).decode()}\n", len(lines))
    expect(audit_kit.run("verify", "--trusted-keys", str(keys)), 1, "does not verify")


MANGLE = {
    "hyphen": lambda t: t.replace("\u2014", "-"),
    "no blank line": lambda t: t.replace("\n\n", "\n"),
    "control character": lambda t: t.replace("\n", "\x07\n", 1),
    "carriage return": lambda t: t.replace("\n", "\r\n", 1),
    "trailing garbage": lambda t: t + "trailing garbage\n",
    "invalid base64": lambda t: t[:-10] + "!!!!!!!!!\n",
    "short signature": lambda t: t.rsplit(" ", 1)[0] + " AAAAAAAAAAAA\n",
    "too many signatures": lambda t: t + t.split("\n\n")[1] * 100,
    "empty text": lambda t: "\n" + t.split("\n\n")[1],
}


@pytest.mark.parametrize("name", MANGLE)
def test_11_malformed_checkpoint_notes(sealed_log, audit_kit, name):
    latest(sealed_log).write_text(MANGLE[name](latest(sealed_log).read_text()))
    expect(audit_kit.run("verify"), 1, "checkpoints/latest.note")


@pytest.mark.parametrize("change", ["origin", "extension"])
def test_12_wrong_origin_or_extension_lines(sealed_log, audit_kit, change):
    lines = lines_of(sealed_log)
    root = Tree([leaf_hash(x) for x in lines]).root()
    if change == "origin":
        signer = KeySigner(generate_skey("evil.example/audit/v1"))
        keys = sealed_log.parent / "keys-plus.txt"
        keys.write_text((sealed_log / "trusted-keys.txt").read_text() + signer.vkey + "\n")
        set_checkpoint(
            sealed_log, sign_note(checkpoint_text("evil.example/audit/v1", len(lines), root), [signer]), len(lines)
        )
        expect(audit_kit.run("verify", "--trusted-keys", str(keys), "--origin", audit_kit.origin), 1, "origin is")
    else:
        text = checkpoint_text(audit_kit.origin, len(lines), root) + "extension\n"
        set_checkpoint(sealed_log, sign_note(text, [local_signer(sealed_log)]), len(lines))
        expect(audit_kit.run("verify"), 1, "extension lines")


def test_13_equivocation(sealed_log, audit_kit):
    size = len(lines_of(sealed_log))
    other = sign_note(checkpoint_text(audit_kit.origin, size, bytes(32)), [local_signer(sealed_log)])
    latest(sealed_log).write_text(other)  # history keeps the honest one for the same size
    expect(audit_kit.run("verify"), 1, "equivocation")


def test_14_rollback_detected_against_a_pinned_checkpoint(sealed_log, audit_kit, tmp_path):
    old_copy = tmp_path / "old"
    shutil.copytree(sealed_log, old_copy)
    with audit_kit.open_log(sealed_log) as log:
        audit_kit.write_case(log, "p-dave", "case-3")
        log.checkpoint()
    pin = tmp_path / "pin.note"
    shutil.copy(latest(sealed_log), pin)
    expect(audit_kit.run("verify", "--pinned", str(pin)), 0)
    shutil.rmtree(sealed_log)
    shutil.copytree(old_copy, sealed_log)
    expect(audit_kit.run("verify"), 0)  # internally consistent on its own ...
    expect(audit_kit.run("verify", "--pinned", str(pin)), 1, "rollback")  # ... but not against the pin
    expect(audit_kit.run("consistency", str(pin)), 1, "rollback")


def test_15_fork_detected_against_a_pinned_checkpoint(sealed_log, audit_kit, tmp_path):
    pin = tmp_path / "pin.note"
    shutil.copy(latest(sealed_log), pin)
    expect(audit_kit.run("consistency", str(pin)), 0, "consistent")
    size = len(lines_of(sealed_log))
    # An insider with the key rewrites history from case 1 on and re-signs everything.
    lines = lines_of(sealed_log)[:5]
    write_lines(sealed_log, lines)
    for p in (sealed_log / "checkpoints").iterdir():
        if p.name != "latest.note" and int(p.name[:20]) > 5:
            p.unlink()
    set_checkpoint(
        sealed_log,
        sign_note(
            checkpoint_text(audit_kit.origin, 5, Tree([leaf_hash(x) for x in lines]).root()), [local_signer(sealed_log)]
        ),
        5,
    )
    (sealed_log / "persons.json").unlink()
    with audit_kit.open_log(sealed_log) as log:
        audit_kit.write_case(log, "p-bob", "case-1", results={"github": "failed"}, status="incomplete")
        audit_kit.write_case(log, "p-carol", "case-2")
        log.checkpoint()
        assert log.size >= size
    expect(audit_kit.run("verify"), 2)  # consistent with itself (only the incomplete case is a finding)
    expect(audit_kit.run("verify", "--pinned", str(pin)), 1, "fork")
    expect(audit_kit.run("consistency", str(pin)), 1, "NOT CONSISTENT")


def test_16_consistency_command_proof_verifies(sealed_log, audit_kit, tmp_path):
    pin = tmp_path / "pin.note"
    shutil.copy(sealed_log / "checkpoints" / f"{4:020d}.note", pin)
    data = json.loads(audit_kit.run("consistency", str(pin), "--json").output)
    assert data["consistent"] and data["old"]["size"] == 4 and data["new"]["size"] == 12
    assert len(data["proof"]) >= 1


def test_17_internal_node_presented_as_entry(sealed_log, audit_kit):
    lines = lines_of(sealed_log)
    tree = Tree([leaf_hash(x) for x in lines])
    node = tree._subtree(0, 1) + tree._subtree(1, 2)  # the 64 bytes under an internal node
    write_lines(sealed_log, [node] + lines[2:])
    expect(audit_kit.run("verify"), 1)


def _dup_key(line: bytes) -> bytes:
    return line[:-1] + b',"case":"case-x"}'


NON_CANONICAL = {
    "whitespace": lambda line: line.replace(b":", b": ", 1),
    "reordered keys": lambda line: json.dumps(
        dict(reversed(list(json.loads(line).items()))), separators=(",", ":")
    ).encode(),
    "duplicate key": _dup_key,
    "float": lambda line: line.replace(b'"attempts":1', b'"attempts":1.0'),
    "bom": lambda line: b"\xef\xbb\xbf" + line,
    "crlf": lambda line: line + b"\r",
    "invalid utf-8": lambda line: line.replace(b"p-bob", b"p-b\xffb", 1),
}


@pytest.mark.parametrize("name", NON_CANONICAL)
def test_18_non_canonical_entries(sealed_log, audit_kit, name):
    lines = lines_of(sealed_log)
    i = next(i for i, x in enumerate(lines) if b'"attempts":1' in x and b"p-bob" in x)
    changed = NON_CANONICAL[name](lines[i])
    assert changed != lines[i]
    lines[i] = changed
    write_lines(sealed_log, lines)
    result = audit_kit.run("verify")
    expect(result, 1, f"entries.jsonl line {i + 1}")


def test_18_torn_last_line(sealed_log, audit_kit):
    with open(sealed_log / "entries.jsonl", "ab") as f:
        f.write(b'{"v":1')
    expect(audit_kit.run("verify"), 1, "torn last line")


def test_19_leafhash_cache_inconsistent(sealed_log, audit_kit):
    cache = bytearray((sealed_log / "leafhashes.bin").read_bytes())
    cache[40] ^= 1
    (sealed_log / "leafhashes.bin").write_bytes(bytes(cache))
    expect(audit_kit.run("verify"), 1, "leafhashes.bin", "leaf 1")


def test_bad_trust_list_and_missing_log_are_clear_errors(sealed_log, audit_kit, tmp_path):
    bad = tmp_path / "bad-keys.txt"
    bad.write_text("not-a-key\n")
    result = audit_kit.run("verify", "--trusted-keys", str(bad))
    assert result.exit_code == 1 and "line 1" in result.output and "Traceback" not in result.output
    result = audit_kit.run(
        "--log", str(tmp_path / "nowhere"), "verify", "--trusted-keys", str(sealed_log / "trusted-keys.txt")
    )
    # nothing to verify is a usage error (2), not tampering (1)
    assert result.exit_code == 2 and f"no audit log at {tmp_path / 'nowhere'}" in result.output


# -- compliance findings: exit 2 ------------------------------------------------------------


def _fresh(audit_home, audit_kit):
    return audit_kit.open_log(audit_home / "audit")


def test_compliance_case_without_close(audit_home, audit_kit):
    with _fresh(audit_home, audit_kit) as log:
        audit_kit.write_case(log, "p-alice", "case-0", close=False)
        log.checkpoint()
    expect(audit_kit.run("verify"), 2, "never closed")


def test_compliance_planned_account_without_final_result(audit_home, audit_kit):
    with _fresh(audit_home, audit_kit) as log:
        audit_kit.write_case(log, "p-alice", "case-0", results={"github": "waiting"})
        log.checkpoint()
    expect(audit_kit.run("verify"), 2, "has no final result")


def test_compliance_sla_missed(audit_home, audit_kit):
    with _fresh(audit_home, audit_kit) as log:
        audit_kit.write_case(log, "p-alice", "case-0", termination="2025-12-30T00:00:00.000Z")
        log.checkpoint()
    expect(audit_kit.run("verify"), 0)
    expect(audit_kit.run("verify", "--sla", "24h"), 2, "SLA missed")
    expect(audit_kit.run("verify", "--sla", "4d"), 0)


def test_compliance_approval_without_approver_and_incomplete_case(audit_home, audit_kit):
    with _fresh(audit_home, audit_kit) as log:
        audit_kit.write_case(log, "p-alice", "case-0", results={"entra": "failed"}, status="incomplete")
        log.append("approval", {"case": "case-0", "approver": None, "reason": "skip", "scope": "case"})
        log.checkpoint()
    result = audit_kit.run("verify")
    expect(result, 2, "closed incomplete", "has no approver")
    assert "INTEGRITY" not in result.output


# -- keys (section 9, items 20-23) -------------------------------------------------------


def _mark_key(directory: Path, options: str, tmp_path: Path) -> Path:
    """An auditor's trust list with the log's only key carrying ``options``."""
    vkey = (directory / "trusted-keys.txt").read_text().split("\n")
    line = next(x for x in vkey if x and not x.startswith("#")).split()[0]
    path = tmp_path / "keys.txt"
    path.write_text(f"{line} {options}\n")
    return path


@pytest.mark.parametrize(
    "options, fragment",
    [
        ("status=compromised", "compromised for every size"),
        ("valid_to_size=4 status=compromised", "compromised after size 4"),
        ("status=retired", "no signature from a key trusted for tree size"),
        ("valid_to_size=8 status=retired", "no signature from a key trusted for tree size 12"),
    ],
)
def test_20_21_retired_or_compromised_key(sealed_log, audit_kit, tmp_path, options, fragment):
    keys = _mark_key(sealed_log, options, tmp_path)
    expect(audit_kit.run("verify", "--trusted-keys", str(keys)), 1, fragment)


def test_21_compromised_key_still_proves_the_history_before_it(sealed_log, audit_kit, tmp_path):
    keys = _mark_key(sealed_log, "valid_to_size=12 status=compromised", tmp_path)
    expect(audit_kit.run("verify", "--trusted-keys", str(keys)), 0)


def test_22_key_rotation_announcing_an_untrusted_key(sealed_log, audit_kit):
    with audit_kit.open_log(sealed_log) as log:
        log.append("key_rotation", {"old": [], "new": "stranger+00000000+AAAA", "reason": "x", "approver": None})
        log.checkpoint()
    expect(audit_kit.run("verify"), 1, "not in the trusted keys")


def test_23_trust_list_with_a_mangled_key_id(sealed_log, audit_kit, tmp_path):
    keys = _mark_key(sealed_log, "", tmp_path)
    name, kid, key = keys.read_text().split()[0].split("+", 2)
    keys.write_text(f"{name}+{(int(kid, 16) ^ 1):08x}+{key}\n")
    result = audit_kit.run("verify", "--trusted-keys", str(keys))
    assert result.exit_code == 1 and "Traceback" not in result.output


# -- an insider with write access to the directory (issue #18) -----------------------------


def resign(directory: Path, lines: list[bytes]) -> None:
    """Re-sign every stored checkpoint over ``lines`` with the log's own key, as an insider with the key can."""
    write_lines(directory, lines)
    leaves = [leaf_hash(line) for line in lines]
    signer = local_signer(directory)
    newest = None
    for path in sorted((directory / "checkpoints").iterdir()):
        if path.name == "latest.note":
            continue
        size = int(path.name[:20])
        note = sign_note(checkpoint_text(origin_of(directory), size, Tree(leaves[:size]).root()), [signer])
        path.write_text(note)
        newest = note
    if newest is not None:
        latest(directory).write_text(newest)
    shutil.rmtree(directory / "index", ignore_errors=True)  # the person index would tell: rebuilt by the next seal


def origin_of(directory: Path) -> str:
    return (directory / "origin").read_text().strip()


def test_37_edit_with_latest_deleted(sealed_log, audit_kit):
    lines = lines_of(sealed_log)
    lines[1] = _retime(lines[1])
    write_lines(sealed_log, lines)
    latest(sealed_log).unlink()
    expect(audit_kit.run("verify"), 1, "root hash does not match", "latest.note: missing")


def test_38_edit_with_every_checkpoint_deleted(sealed_log, audit_kit):
    lines = lines_of(sealed_log)
    lines[1] = _retime(lines[1])
    write_lines(sealed_log, lines)
    (sealed_log / "leafhashes.bin").unlink()
    shutil.rmtree(sealed_log / "checkpoints")
    result = audit_kit.run("verify")
    expect(result, 1, "no checkpoint")
    assert "not sealed yet" not in result.output


def test_39_history_file_overwritten_with_another_checkpoint(sealed_log, audit_kit):
    folder = sealed_log / "checkpoints"
    (folder / f"{8:020d}.note").write_bytes((folder / f"{4:020d}.note").read_bytes())
    expect(audit_kit.run("verify"), 1, "the file name says size 8")


def test_40_history_file_resigned_with_another_root(sealed_log, audit_kit):
    other = sign_note(checkpoint_text(audit_kit.origin, 8, bytes(32)), [local_signer(sealed_log)])
    (sealed_log / "checkpoints" / f"{8:020d}.note").write_text(other)
    expect(audit_kit.run("verify"), 1, "root hash does not match the first 8")


def test_41_latest_older_than_the_newest_history_file(sealed_log, audit_kit):
    folder = sealed_log / "checkpoints"
    latest(sealed_log).write_bytes((folder / f"{8:020d}.note").read_bytes())
    expect(audit_kit.run("verify"), 1, "is older (8) than the newest stored checkpoint (12)")


@pytest.mark.parametrize(
    "old, new, fragment",
    [
        (b'"v":1', b'"v":true', "'v' must be the integer 1"),
        (b'"person_prev":4', b'"person_prev":true', "'person_prev' must be an integer or null"),
        (b'"person_prev":null', b'"person_prev":false', "'person_prev' must be an integer or null"),
        (b'"attempts":1', b'"attempts":9007199254740992', "outside +-(2**53-1)"),
        (b'"attempts":1', b'"attempts":-9007199254740992', "outside +-(2**53-1)"),
        (b'"id":"p-bob"', b'"id":7', "'person' must be an object whose 'id' is a non-empty string"),
        (b'"seq":5', b'"seq":true', "'seq' is True"),
    ],
)
def test_42_values_the_writer_never_writes_even_when_resigned(sealed_log, audit_kit, old, new, fragment):
    lines = lines_of(sealed_log)
    index = next(i for i, line in enumerate(lines) if old in line and (old != b'"v":1' or i == 5))
    lines[index] = lines[index].replace(old, new, 1)
    resign(sealed_log, lines)
    expect(audit_kit.run("verify"), 1, fragment)


def test_43_stray_files_in_checkpoints_are_warnings(sealed_log, audit_kit):
    (sealed_log / "checkpoints" / "notes.txt").write_text("hello")
    (sealed_log / "checkpoints" / f"{12:020d}.note.tmp").write_text("half")
    expect(audit_kit.run("verify"), 0, "unexpected file", "interrupted write")


def test_44_rewritten_and_resigned_with_the_real_key_caught_by_a_pin(sealed_log, audit_kit, tmp_path):
    pin = tmp_path / "pin.note"
    shutil.copy(latest(sealed_log), pin)
    lines = lines_of(sealed_log)
    lines[2] = _retime(lines[2])
    resign(sealed_log, lines)
    expect(audit_kit.run("verify"), 0)  # the directory alone cannot tell ...
    expect(audit_kit.run("verify", "--pinned", str(pin)), 1, "fork")  # ... the auditor's pin can


def test_45_compromised_key_cosigning_a_later_checkpoint(sealed_log, audit_kit, tmp_path):
    """A checkpoint beyond a compromised key's range is rejected even when a trusted key signed it too."""
    origin = audit_kit.origin
    old = local_signer(sealed_log)
    new = KeySigner(generate_skey(origin))
    with audit_kit.open_log(sealed_log) as log:
        log.append("note", {"text": "one more"})
    lines = lines_of(sealed_log)
    note = sign_note(checkpoint_text(origin, len(lines), Tree([leaf_hash(x) for x in lines]).root()), [old, new])
    set_checkpoint(sealed_log, note, len(lines))
    keys = tmp_path / "keys.txt"
    keys.write_text(f"{old.vkey} valid_to_size=12 status=compromised\n{new.vkey} valid_from_size=13\n")
    expect(audit_kit.run("verify", "--trusted-keys", str(keys)), 1, "compromised after size 12")
    keys.write_text(f"{old.vkey} valid_to_size=13 status=retired\n{new.vkey} valid_from_size=13\n")
    expect(audit_kit.run("verify", "--trusted-keys", str(keys)), 0)


@pytest.mark.parametrize(
    "suffix, fragment",
    [
        ("\n{vkey} status=retired", "is listed twice"),
        (" valid_from_size=\u0663", "decimal integers"),
        (" valid_from_size=+3", "decimal integers"),
        (" status=revoked", "status must be"),
        (" valid_from_size=1 valid_from_size=2", "unexpected"),
    ],
)
def test_46_trust_list_that_must_not_parse(sealed_log, audit_kit, tmp_path, suffix, fragment):
    vkey = local_signer(sealed_log).vkey
    keys = tmp_path / "keys.txt"
    keys.write_text(vkey + suffix.format(vkey=vkey) + "  # a comment\n")
    expect(audit_kit.run("verify", "--trusted-keys", str(keys)), 1, fragment)


def test_47_vkey_with_plus_in_base64_and_inline_comment(tmp_path):
    """A vkey whose base64 holds '+' is split on the first two '+' only; '#' starts a comment."""
    from offboard.audit import TrustList

    for _i in range(200):
        signer = KeySigner(generate_skey("t.example/log"))
        if "+" in signer.vkey.split("+", 2)[2]:
            break
    else:  # each key has about even odds of a '+': 200 keys without one is (0.47)^200
        raise AssertionError("no key with '+' in its base64 in 200 tries")
    trust = TrustList.parse(f"{signer.vkey} valid_from_size=0#comment\n# whole line\n\n")
    assert trust.keys[0].verifier.vkey == signer.vkey and trust.keys[0].status == "active"


@pytest.fixture(autouse=True, params=["one pass", "three processes"])
def verify_mode(request, monkeypatch):
    """Every tamper case also runs with the log cut into three stretches scanned by worker processes."""
    if request.param == "three processes":
        from offboard.audit import _verify

        monkeypatch.setattr(_verify, "MIN_BYTES_PER_PROCESS", 1)
        monkeypatch.setattr(_verify, "_cpus", lambda: 3)
    return request.param
