"""docs/audit-format.md's test vectors still verify, and still match what the code produces."""

from __future__ import annotations

import base64
import re
from hashlib import sha256
from pathlib import Path

from offboard.audit._entry import canonical, check_common, parse_entry
from offboard.audit._merkle import Tree, leaf_hash, verify_consistency, verify_inclusion
from offboard.audit._note import (
    KeySigner,
    TrustList,
    checkpoint_text,
    format_proof,
    parse_checkpoint,
    parse_proof,
    sign_note,
)
from offboard.audit._witness import WitnessKey, format_add_checkpoint, parse_add_checkpoint, verify_cosignatures

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-format.md"
ORIGIN = "corp.example/offboard/audit/v1"


def vector_signer() -> KeySigner:
    seed = sha256(b"offboard audit-format test vector").digest()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from offboard.audit._note import b64, vkey_for

    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    key_id = vkey_for(ORIGIN, public).split("+")[1]
    return KeySigner(f"PRIVATE+KEY+{ORIGIN}+{key_id}+{b64(bytes([1]) + seed)}")


WITNESS = "witness.example/w1"
COSIGN_TIME = 1772442002  # 2026-03-02T09:00:02Z


def vector_witness():
    """The witness key of the vectors: seed SHA-256("offboard witness test vector")."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from offboard.audit._note import b64
    from offboard.audit._witness import WitnessSigner, _key_id

    seed = sha256(b"offboard witness test vector").digest()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return WitnessSigner(f"PRIVATE+KEY+{WITNESS}+{_key_id(WITNESS, public):08x}+{b64(bytes([4]) + seed)}")


def vectors() -> dict[str, str]:
    """Every vector in the document, generated from the code."""
    base = {"v": 1, "log": ORIGIN}
    entries = [
        {
            **base,
            "seq": 0,
            "time": "2026-03-02T09:00:00.000Z",
            "type": "case_opened",
            "case": "c-1",
            "person": {"id": "p-42", "employee_id": "E42"},
            "person_prev": None,
            "trigger": "webhook",
            "policy": "default",
            "reason": "terminated",
            "termination_at": "2026-03-02T08:55:00.000Z",
            "dry_run": False,
            "plan": [
                {"system": "entra", "account": {"id": "u-1", "name": "ada@corp.example"}, "kind": "disable_account"}
            ],
        },
        {
            **base,
            "seq": 1,
            "time": "2026-03-02T09:00:01.250Z",
            "type": "action",
            "case": "c-1",
            "person": {"id": "p-42"},
            "person_prev": 0,
            "system": "entra",
            "account": {"id": "u-1", "name": "ada@corp.example"},
            "kind": "disable_account",
            "requested_at": "2026-03-02T09:00:00.900Z",
            "responded_at": "2026-03-02T09:00:01.200Z",
            "result": "verified",
            "reference": "req-7f3a",
            "changed": True,
            "attempts": 1,
            "error": None,
            "verification": {"ok": True, "observed": {"accountEnabled": False}, "detail": "read back"},
        },
        {
            **base,
            "seq": 2,
            "time": "2026-03-02T09:00:01.300Z",
            "type": "case_closed",
            "case": "c-1",
            "person": {"id": "p-42"},
            "person_prev": 1,
            "status": "complete",
            "counts": {"verified": 1},
            "termination_at": "2026-03-02T08:55:00.000Z",
            "last_verified_at": "2026-03-02T09:00:01.200Z",
            "elapsed_ms": 301200,
        },
    ]
    lines = [canonical(e) for e in entries]
    tree = Tree([leaf_hash(line) for line in lines])
    signer = vector_signer()
    note = sign_note(checkpoint_text(ORIGIN, 3, tree.root()), [signer])
    one = sign_note(checkpoint_text(ORIGIN, 1, tree.root(1)), [signer])
    return {
        "vkey": signer.vkey + "\n",
        "trusted-keys": signer.vkey + " valid_from_size=0 status=active\n",
        "entries": b"".join(line + b"\n" for line in lines).decode(),
        "leaf-hashes": "".join(leaf_hash(line).hex() + "\n" for line in lines),
        "checkpoint": note,
        "proof": format_proof(1, tree.inclusion_proof(1, 3), note),
        "checkpoint-1": one,
        "consistency": "".join(base64.b64encode(p).decode() + "\n" for p in tree.consistency_proof(1, 3)),
        "witness-vkey": vector_witness().key.vkey + "\n",
        "add-checkpoint": format_add_checkpoint(1, tree.consistency_proof(1, 3), note).decode(),
        "cosignature": vector_witness().cosign(note[: note.rfind("\n\n") + 1], COSIGN_TIME),
    }


def doc_vectors() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    found = dict(re.findall(r"<!-- vector: ([a-z0-9-]+) -->\n```text\n(.*?)```", text, re.S))
    return found


def test_doc_vectors_match_the_code():
    found, expected = doc_vectors(), vectors()
    assert sorted(found) == sorted(expected)
    for name in expected:
        assert found[name] == expected[name], name


def test_doc_vectors_verify_independently():
    v = doc_vectors()
    trust = TrustList.parse(v["trusted-keys"])
    cp = parse_checkpoint(v["checkpoint"], trust, ORIGIN)
    lines = v["entries"].encode().splitlines()
    for i, line in enumerate(lines):
        check_common(parse_entry(line), i, ORIGIN)
        assert leaf_hash(line).hex() == v["leaf-hashes"].split()[i]
    proof = parse_proof(v["proof"])
    assert proof.checkpoint == v["checkpoint"]
    assert verify_inclusion(leaf_hash(lines[proof.index]), proof.index, cp.size, proof.path, cp.root)
    old = parse_checkpoint(v["checkpoint-1"], trust, ORIGIN)
    hashes = [base64.b64decode(x) for x in v["consistency"].split()]
    assert verify_consistency(old.size, cp.size, old.root, cp.root, hashes)
    key = WitnessKey.parse(v["witness-vkey"])
    good, bad = verify_cosignatures(cp, v["cosignature"], [key])
    assert good == {key.vkey} and not bad
    sig = base64.b64decode(v["cosignature"].split()[-1])
    assert int.from_bytes(sig[4:12], "big") == COSIGN_TIME
    size, request_proof, request_note = parse_add_checkpoint(v["add-checkpoint"].encode())
    assert (size, request_proof, request_note) == (1, hashes, v["checkpoint"])


if __name__ == "__main__":  # print the vectors for the document
    for name, value in vectors().items():
        print(f"<!-- vector: {name} -->\n```text\n{value}```\n")


def test_consistency_vector_is_the_bundle_file_format(tmp_path):
    """The spec's consistency vector is what a bundle exported with --pinned carries as consistency/1.txt."""
    from offboard.audit._evidence import format_consistency, parse_consistency

    v = vectors()
    leaves = [leaf_hash(line.encode()) for line in v["entries"].splitlines()]
    text = format_consistency(Tree(leaves).consistency_proof(1, 3))
    assert text.decode() == v["consistency"]
    assert parse_consistency(text, "consistency/1.txt") == Tree(leaves).consistency_proof(1, 3)
