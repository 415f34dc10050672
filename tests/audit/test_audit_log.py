"""The writer: append, seal, locking across threads and processes, crash recovery, keys and signers."""

from __future__ import annotations

import json
import multiprocessing
import stat
import threading

import pluggy
import pytest

from offboard import hookspecs
from offboard.audit import AuditError, AuditLog, EntryError, FileSigner, KeySigner, verify_log
from offboard.audit._note import generate_skey


def test_open_creates_key_0600_and_trust_list(audit_home, audit_kit):
    directory = audit_home / "audit"
    with audit_kit.open_log(directory) as log:
        assert log.size == 0 and log.latest is not None and log.latest.size == 0
    key = directory / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("PRIVATE+KEY+" + audit_kit.origin + "+")
    assert (directory / "trusted-keys.txt").read_text().count("valid_from_size=0") == 1
    assert (directory / "origin").read_text().strip() == audit_kit.origin


def test_append_assigns_seq_time_log_and_person_chain(sealed_log, audit_kit):
    lines = (sealed_log / "entries.jsonl").read_bytes().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    assert all(e["log"] == audit_kit.origin and e["v"] == 1 and e["time"].endswith("Z") for e in entries)
    assert all(
        line == json.dumps(json.loads(line), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        for line in lines
    )
    alice = [e for e in entries if e["person"]["id"] == "p-alice"]
    assert alice[0]["person_prev"] is None
    assert [e["person_prev"] for e in alice[1:]] == [e["seq"] for e in alice[:-1]]


def test_checkpoint_is_a_noop_when_nothing_is_new(sealed_log, audit_kit):
    with audit_kit.open_log(sealed_log) as log:
        first = log.checkpoint()
        assert log.checkpoint() == first
        assert first.splitlines()[1] == str(log.size)
        seq = log.append(
            "approval", {"case": "case-0", "approver": "ciso@corp.example", "reason": "ok", "scope": "case"}
        )
        assert seq == log.size - 1
        assert log.checkpoint() != first


@pytest.mark.parametrize(
    "fields,match",
    [
        ({"case": "c", "seq": 4, "approver": "x"}, "set by the log"),
        ({"case": "c", "approver": "x", "score": 1.5}, "floats"),
        ({"case": "c", "approver": "x", "when": object()}, "not a JSON value"),
        ({"case": "c", "approver": "x", "big": 2**60}, "outside"),
    ],
)
def test_append_rejects_bad_fields(audit_home, audit_kit, fields, match):
    with audit_kit.open_log(audit_home / "audit") as log:
        with pytest.raises(EntryError, match=match):
            log.append("approval", fields)
        with pytest.raises(EntryError, match="result"):
            log.append(
                "action",
                {"case": "c", "person": {"id": "p"}, "system": "s", "account": {}, "kind": "k", "result": "done"},
            )
        with pytest.raises(EntryError, match="person.id"):
            log.append("case_closed", {"case": "c", "person": {}, "status": "complete"})
        assert log.size == 0


def test_threads_get_unique_sequence_numbers(audit_home, audit_kit):
    directory = audit_home / "audit"
    seqs: list[int] = []
    with audit_kit.open_log(directory) as log:

        def work(n: int) -> None:
            for i in range(25):
                seqs.append(log.append("approval", {"case": f"t{n}-{i}", "approver": "a", "reason": "r", "scope": "s"}))
                if i % 10 == 0:
                    log.checkpoint()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.checkpoint()
    assert sorted(seqs) == list(range(150))
    assert verify_log(directory).exit_code == 0


def _child(directory: str, origin: str, tag: str) -> None:
    from pathlib import Path

    directory_path = Path(directory)
    with AuditLog.open(directory_path, origin, signer=FileSigner(directory_path / "signing.key", origin)) as log:
        for i in range(40):
            log.append(
                "action",
                {
                    "case": f"case-{tag}",
                    "person": {"id": f"p-{tag}"},
                    "system": "s",
                    "account": {"id": f"a{i}"},
                    "kind": "disable_account",
                    "result": "verified",
                },
            )
            if i % 7 == 0:
                log.checkpoint()


def test_processes_share_the_log_through_the_file_lock(audit_home, audit_kit):
    directory = audit_home / "audit"
    audit_kit.open_log(directory).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child, args=(str(directory), audit_kit.origin, tag)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with audit_kit.open_log(directory) as log:
        assert log.size == 80
    report = verify_log(directory)
    assert report.exit_code == 2, report.problems  # actions without case_opened are compliance findings
    assert not report.of("integrity")


def test_torn_last_line_is_quarantined_and_recorded(sealed_log, audit_kit):
    with open(sealed_log / "entries.jsonl", "ab") as f:
        f.write(b'{"case":"case-9","person":{"id":"p-ali')
    result = audit_kit.run("verify")
    assert result.exit_code == 1 and "torn last line" in result.output
    with audit_kit.open_log(sealed_log) as log:
        assert log.recovered == [log.size - 1]
    last = json.loads((sealed_log / "entries.jsonl").read_bytes().splitlines()[-1])
    assert last["type"] == "recovery" and last["bytes"] == 38
    assert (sealed_log / last["quarantined"]).read_bytes().startswith(b'{"case":"case-9"')
    result = audit_kit.run("verify")
    assert result.exit_code == 0, result.output


def test_refuses_to_sign_over_changed_or_truncated_entries(sealed_log, audit_kit):
    path = sealed_log / "entries.jsonl"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"p-bob@github.example", b"p-bob@gitlab.example"))
    with pytest.raises(AuditError, match="no longer match"):
        audit_kit.open_log(sealed_log)
    path.write_bytes(b"".join(line + b"\n" for line in original.splitlines()[:-2]))
    with pytest.raises(AuditError, match="truncated"):
        audit_kit.open_log(sealed_log)


def test_reopen_continues_the_sequence_and_the_chain(sealed_log, audit_kit):
    with audit_kit.open_log(sealed_log) as log:
        size = log.size
        audit_kit.write_case(log, "p-alice", "case-again")
        log.checkpoint()
    entries = [json.loads(x) for x in (sealed_log / "entries.jsonl").read_bytes().splitlines()]
    assert entries[size]["seq"] == size
    previous_alice = max(e["seq"] for e in entries[:size] if e["person"]["id"] == "p-alice")
    assert entries[size]["person_prev"] == previous_alice
    assert audit_kit.run("verify").exit_code == 0


class _Plugin:
    def __init__(self, signer):
        self.signer = signer

    @hookspecs.hookimpl
    def checkpoint_signer(self, config, data_dir):
        return self.signer


def _pm(signer) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("offboard")
    pm.add_hookspecs(hookspecs)
    pm.register(_Plugin(signer))
    return pm


def test_signer_hook_plugin_and_local_fallback(audit_home, audit_kit):
    directory = audit_home / "audit"
    with AuditLog.open(directory, audit_kit.origin, pm=_pm(None)) as log:
        assert isinstance(log.signer, FileSigner)
        audit_kit.write_case(log, "p-alice", "case-1")
        log.checkpoint()
    kms = KeySigner(generate_skey(audit_kit.origin))  # stands in for a KMS signer
    with AuditLog.open(directory, audit_kit.origin, pm=_pm(kms)) as log:
        assert log.signer is kms
        audit_kit.write_case(log, "p-bob", "case-2")
        note = log.checkpoint()
    assert kms.vkey.split("+")[1] in (directory / "trusted-keys.txt").read_text()
    entries = [json.loads(x) for x in (directory / "entries.jsonl").read_bytes().splitlines()]
    rotation = [e for e in entries if e["type"] == "key_rotation"]
    assert rotation and rotation[0]["new"] == kms.vkey
    assert note.count("\u2014 ") == 1
    assert audit_kit.run("verify").exit_code == 0
    wrong = KeySigner(generate_skey("other.example/log"))
    with pytest.raises(AuditError, match="named"):
        AuditLog.open(directory, audit_kit.origin, pm=_pm(wrong))


def test_origin_mismatch_and_bad_key_permissions(sealed_log, audit_kit):
    with pytest.raises(AuditError, match="has origin"):
        AuditLog.open(sealed_log, "elsewhere.example/audit", signer=KeySigner(generate_skey("elsewhere.example/audit")))
    (sealed_log / "signing.key").chmod(0o644)
    with pytest.raises(AuditError, match="readable by others") as info:
        AuditLog.open(sealed_log, audit_kit.origin, pm=_pm(None))
    assert "PRIVATE" not in str(info.value)


def test_rotate_key_cross_signs_and_retires(sealed_log, pinned_keys, audit_kit, tmp_path):
    old_key = (sealed_log / "signing.key").read_text()
    result = audit_kit.run("rotate-key", "--reason", "annual", "--approver", "ciso")
    assert result.exit_code == 0, result.output
    assert old_key.split("+")[4] not in result.output  # never print private material
    latest = (sealed_log / "checkpoints" / "latest.note").read_text()
    assert latest.count("\u2014 ") == 2  # old and new key during rotation
    trust = (sealed_log / "trusted-keys.txt").read_text()
    assert "status=retired" in trust and trust.count("status=active") == 1
    with audit_kit.open_log(sealed_log) as log:
        audit_kit.write_case(log, "p-dave", "case-9")
        assert log.checkpoint().count("\u2014 ") == 1
    assert audit_kit.run("verify").exit_code == 0
    # The auditor's old pinned list does not know the new key: flagged until they pin the new list.
    result = audit_kit.run("verify", "--trusted-keys", str(pinned_keys))
    assert result.exit_code == 1 and "not in the trusted keys" in result.output
    # A checkpoint signed only by the retired key after its valid_to_size is rejected.
    retired = KeySigner(old_key)
    from offboard.audit._merkle import Tree, leaf_hash
    from offboard.audit._note import checkpoint_text, sign_note

    lines = (sealed_log / "entries.jsonl").read_bytes().splitlines()
    forged = sign_note(
        checkpoint_text(audit_kit.origin, len(lines), Tree([leaf_hash(x) for x in lines]).root()), [retired]
    )
    (sealed_log / "checkpoints" / "latest.note").write_text(forged)
    (sealed_log / "checkpoints" / f"{len(lines):020d}.note").write_text(forged)
    result = audit_kit.run("verify")
    assert result.exit_code == 1 and "trusted for tree size" in result.output
