"""Witnesses in separate processes (C2SP tlog-witness, tlog-cosignature): forks and rollbacks are refused (#18).

Someone who holds the log's directory *and* its signing key can rewrite the log and re-sign every
checkpoint; only parties outside their control can tell. Two ``offboard witness serve`` processes
cosign each new checkpoint only when it is consistent with the last one they saw, and
``audit verify --witness-key K --min-witnesses N`` requires those cosignatures.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import offboard
from offboard.audit._merkle import EMPTY_ROOT, Tree, leaf_hash
from offboard.audit._note import KeySigner, TrustList, checkpoint_text, parse_checkpoint, sign_note
from offboard.audit._witness import (
    Witness,
    WitnessKey,
    WitnessSigner,
    format_add_checkpoint,
    generate_witness_skey,
    verify_cosignatures,
)

ORIGIN = "test.example/offboard/audit/v1"


def start_witness(tmp_path: Path, name: str, log_vkey: str) -> tuple[subprocess.Popen, str, str]:
    """``offboard witness serve`` in its own process; returns (process, url, witness vkey)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(offboard.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "offboard",
            "witness",
            "serve",
            "--key",
            str(tmp_path / f"{name}.key"),
            "--name",
            name,
            "--state",
            str(tmp_path / f"{name}.json"),
            "--log",
            log_vkey,
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = proc.stdout.readline()
    match = re.match(r"witness (\S+) listening on (http://\S+)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"the witness did not start: {line!r} {proc.stderr.read()}")
    return proc, match[2], match[1]


@pytest.fixture
def witnessed(audit_home, audit_kit, tmp_path):
    """A log with two witnesses (separate processes) configured; yields (directory, witnesses, procs)."""
    directory = audit_home / "audit"
    with audit_kit.open_log(directory):
        pass
    vkey = KeySigner((directory / "signing.key").read_text()).vkey
    started = [start_witness(tmp_path, name, vkey) for name in ("w1.example", "w2.example")]
    witnesses = [{"url": url, "key": key} for _, url, key in started]
    try:
        yield directory, witnesses, [p for p, _, _ in started]
    finally:
        for proc, _, _ in started:
            proc.terminate()
            proc.wait(timeout=10)
            proc.stdout.close()
            proc.stderr.close()


def open_witnessed(directory: Path, witnesses):
    from offboard.audit import AuditLog, FileSigner

    return AuditLog.open(directory, ORIGIN, signer=FileSigner(directory / "signing.key", ORIGIN), witnesses=witnesses)


def verify_args(witnesses, minimum: int = 2) -> list[str]:
    out = ["verify"]
    for w in witnesses:
        out += ["--witness-key", w["key"]]
    return out + ["--min-witnesses", str(minimum)]


def cosig(directory: Path, size: int) -> Path:
    return directory / "checkpoints" / f"{size:020d}.cosig"


def test_two_witnesses_cosign_every_new_checkpoint(witnessed, audit_kit):
    directory, witnesses, _ = witnessed
    with open_witnessed(directory, witnesses) as log:
        audit_kit.write_case(log, "p-alice", "case-0")
        log.checkpoint()
        assert log.witness_failures == []
        size = log.size
    assert cosig(directory, size).read_text().count("\u2014 ") == 2
    result = audit_kit.run(*verify_args(witnesses))
    assert result.exit_code == 0, result.output
    # Without the cosignatures the same verify fails: the witnesses are required, not decorative.
    cosig(directory, size).unlink()
    result = audit_kit.run(*verify_args(witnesses))
    assert result.exit_code == 1 and "0 valid witness cosignature(s); 2 required" in result.output


def test_fork_resigned_with_the_real_key_is_refused_and_detected(witnessed, audit_kit):
    directory, witnesses, _ = witnessed
    with open_witnessed(directory, witnesses) as log:
        for i, person in enumerate(("p-alice", "p-bob")):
            audit_kit.write_case(log, person, f"case-{i}")
            log.checkpoint()
    # The insider rewrites an entry and re-signs every checkpoint with the log's own key.
    lines = (directory / "entries.jsonl").read_bytes().splitlines()
    edited = lines[0].replace(b'"reason":"left the company"', b'"reason":"retired early"')
    assert edited != lines[0]
    lines[0] = edited
    (directory / "entries.jsonl").write_bytes(b"".join(x + b"\n" for x in lines))
    leaves = [leaf_hash(x) for x in lines]
    (directory / "leafhashes.bin").write_bytes(b"".join(leaves))
    signer = KeySigner((directory / "signing.key").read_text())
    for path in sorted((directory / "checkpoints").glob("*.note")):
        if path.name != "latest.note":
            size = int(path.name[:20])
            note = sign_note(checkpoint_text(ORIGIN, size, Tree(leaves[:size]).root()), [signer])
            path.write_text(note)
            (directory / "checkpoints" / "latest.note").write_text(note)
    shutil.rmtree(directory / "index")  # the per-person index would tell (verify compares it with the entries)
    assert audit_kit.run("verify").exit_code == 0  # the directory alone cannot tell
    with open_witnessed(directory, witnesses) as log:  # the next seal goes to the witnesses ...
        audit_kit.write_case(log, "p-carol", "case-2")
        log.checkpoint()
        failures = log.witness_failures
        size = log.size
    assert len(failures) == 2 and all("refused (422)" in f for f in failures), failures  # ... who refuse
    assert not cosig(directory, size).exists()
    result = audit_kit.run(*verify_args(witnesses))
    assert result.exit_code == 1, result.output
    assert "0 valid witness cosignature(s); 2 required" in result.output


def test_rollback_is_refused_and_detected(witnessed, audit_kit, tmp_path):
    directory, witnesses, _ = witnessed
    with open_witnessed(directory, witnesses) as log:
        audit_kit.write_case(log, "p-alice", "case-0")
        log.checkpoint()
    old = tmp_path / "old-copy"
    shutil.copytree(directory, old)
    with open_witnessed(directory, witnesses) as log:
        audit_kit.write_case(log, "p-bob", "case-1")
        log.checkpoint()
    shutil.rmtree(directory)
    shutil.copytree(old, directory)  # back to the older, internally consistent log
    with open_witnessed(directory, witnesses) as log:
        log.append("note", {"text": "written after the rollback"})
        log.checkpoint()
        failures = log.witness_failures
        size = log.size
    assert len(failures) == 2 and all("rollback" in f for f in failures), failures
    assert not cosig(directory, size).exists()
    result = audit_kit.run(*verify_args(witnesses))
    assert result.exit_code == 1 and "2 required" in result.output, result.output


# -- the protocol, in-process ----------------------------------------------------------------


def test_witness_protocol_answers(tmp_path):
    log_signer = KeySigner(__import__("offboard.audit._note", fromlist=["generate_skey"]).generate_skey(ORIGIN))
    witness_signer = WitnessSigner(generate_witness_skey("w.example"))
    witness = Witness(witness_signer, tmp_path / "state.json", [log_signer.vkey], clock=lambda: 1_700_000_000)
    leaves = [leaf_hash(bytes([i])) for i in range(5)]
    tree = Tree(leaves)

    def note(size: int) -> str:
        return sign_note(checkpoint_text(ORIGIN, size, tree.root(size)), [log_signer])

    first = witness.add_checkpoint(format_add_checkpoint(0, [], note(3)))
    assert first.status == 200
    cp = parse_checkpoint(note(3), TrustList.parse(log_signer.vkey + "\n"))
    good, bad = verify_cosignatures(cp, first.body.decode(), [witness_signer.key])
    assert good == {witness_signer.key.vkey} and not bad
    # A stale old size: 409 with the size the witness has.
    stale = witness.add_checkpoint(format_add_checkpoint(0, [], note(5)))
    assert (stale.status, stale.content_type, stale.body) == (409, "text/x.tlog.size", b"3\n")
    # A wrong proof: 422; the right one: 200.
    assert witness.add_checkpoint(format_add_checkpoint(3, [EMPTY_ROOT], note(5))).status == 422
    assert witness.add_checkpoint(format_add_checkpoint(3, tree.consistency_proof(3, 5), note(5))).status == 200
    # Unknown log: 404; a note the log did not sign: 403; garbage: 400.
    other = KeySigner(__import__("offboard.audit._note", fromlist=["generate_skey"]).generate_skey("other.example/log"))
    assert (
        witness.add_checkpoint(
            format_add_checkpoint(0, [], sign_note(checkpoint_text("other.example/log", 0, EMPTY_ROOT), [other]))
        ).status
        == 404
    )
    forged = sign_note(
        checkpoint_text(ORIGIN, 5, tree.root(5)),
        [KeySigner(__import__("offboard.audit._note", fromlist=["generate_skey"]).generate_skey(ORIGIN))],
    )
    assert witness.add_checkpoint(format_add_checkpoint(5, [], forged)).status == 403
    assert witness.add_checkpoint(b"hello").status == 400
    # A cosignature over a different checkpoint does not verify.
    cp5 = parse_checkpoint(note(5), TrustList.parse(log_signer.vkey + "\n"))
    good, bad = verify_cosignatures(cp5, first.body.decode(), [witness_signer.key])
    assert not good and bad
    assert "PRIVATE" not in repr(witness_signer)
    with pytest.raises(Exception, match="not a cosignature key"):
        WitnessKey.parse(log_signer.vkey)


def test_evidence_bundle_carries_the_cosignatures(witnessed, audit_kit, tmp_path):
    import zipfile

    directory, witnesses, _ = witnessed
    with open_witnessed(directory, witnesses) as log:
        audit_kit.write_case(log, "p-alice", "case-0")
        log.checkpoint()
    keys = tmp_path / "keys.txt"
    shutil.copy(directory / "trusted-keys.txt", keys)
    bundle = tmp_path / "alice.zip"
    assert audit_kit.run("evidence", "p-alice", "--out", str(bundle)).exit_code == 0
    with zipfile.ZipFile(bundle) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    assert files["checkpoint.cosig"].count("\u2014 ".encode()) == 2
    args = ["verify-evidence", str(bundle), "--trusted-keys", str(keys)]
    for w in witnesses:
        args += ["--witness-key", w["key"]]
    result = audit_kit.run(*args)
    assert result.exit_code == 0, result.output
    # Drop one witness's line: two are required.
    files["checkpoint.cosig"] = files["checkpoint.cosig"].split(b"\n", 1)[1]
    from hashlib import sha256

    files["MANIFEST.sha256"] = "".join(
        f"{sha256(v).hexdigest()}  {k}\n" for k, v in sorted(files.items()) if k != "MANIFEST.sha256"
    ).encode()
    with zipfile.ZipFile(bundle, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    result = audit_kit.run(*args)
    assert result.exit_code == 1 and "1 valid witness cosignature(s)" in result.output, result.output


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--log", "not-a-vkey", "--name", "w.example"], "is not <name>+<id>+<key>"),
        (["--log", "x", "--listen", "127.0.0.1:http"], "is not HOST:PORT"),
        (["--log", "x"], "give --name to create a witness key there"),
    ],
)
def test_witness_serve_bad_input_is_a_clear_error(tmp_path, extra, fragment):
    from click.testing import CliRunner

    from offboard.cli._witness import witness

    args = ["serve", "--key", str(tmp_path / "w.key"), "--state", str(tmp_path / "s.json"), *extra]
    result = CliRunner().invoke(witness, args)
    assert result.exit_code == 2 and fragment in result.output, result.output
    assert "Traceback" not in result.output
