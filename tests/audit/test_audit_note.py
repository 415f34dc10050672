"""C2SP signed notes and checkpoints: the Go sumdb vector, strict parsing, trust lists, tlog-proofs."""

from __future__ import annotations

import base64

import pytest

from offboard.audit._merkle import Tree, leaf_hash
from offboard.audit._note import (
    KeySigner,
    NoteError,
    TrustedKey,
    TrustList,
    Verifier,
    checkpoint_text,
    format_proof,
    generate_skey,
    open_note,
    parse_checkpoint,
    parse_proof,
    sign_note,
)

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ORIGIN = "note.example/log"


def test_go_sumdb_note_vector_byte_for_byte():
    signer = KeySigner(GO_SKEY)
    assert signer.vkey == GO_VKEY
    note = sign_note(GO_TEXT, [signer])
    assert note.encode("utf-8") == GO_NOTE.encode("utf-8")
    sig = base64.b64decode(note.rsplit(" ", 1)[1])
    assert len(sig) == 68 and sig[:4].hex() == "c74f20a3"


def test_open_with_known_and_unknown_keys():
    verifier = Verifier.parse(GO_VKEY)
    opened = open_note(GO_NOTE, [verifier])
    assert opened.text == GO_TEXT and opened.verified == (verifier,)
    other = Verifier.parse(KeySigner(generate_skey("Other")).vkey)
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(GO_NOTE, [other])
    # An unknown extra signature is ignored.
    unknown = sign_note(GO_TEXT, [KeySigner(generate_skey("Unknown"))]).split("\n\n")[1]
    opened = open_note(GO_NOTE + unknown, [verifier])
    assert opened.unknown and opened.verified == (verifier,)


def test_mangled_vkeys_rejected():
    assert Verifier.parse(GO_VKEY).name == "PeterNeumann"
    for i in range(len(GO_VKEY)):
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) == (0, len(GO_VKEY)):
                continue
            mangled = GO_VKEY[:i] + GO_VKEY[j:]
            with pytest.raises(NoteError):
                Verifier.parse(mangled)
    with pytest.raises(NoteError, match="key ID"):
        Verifier.parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    with pytest.raises(NoteError, match="Ed25519"):
        Verifier.parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


MALFORMED = {
    "hyphen instead of em dash": GO_NOTE.replace("\u2014", "-"),
    "missing blank line": GO_NOTE.replace("\n\n", "\n"),
    "control character": GO_NOTE.replace("If you", "If\x01you"),
    "carriage return": GO_NOTE.replace("problem,\n", "problem,\r\n"),
    "trailing garbage": GO_NOTE + "garbage\n",
    "no final newline": GO_NOTE[:-1],
    "invalid base64": GO_NOTE.replace("x08go/", "x08go*"),
    "short signature": GO_TEXT + "\n\u2014 PeterNeumann x08go/ZJ\n",
    "too many signatures": GO_NOTE + "\u2014 PeterNeumann x08go/ZJkuBS9U\n" * 100,
    "empty text": "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
    "invalid UTF-8": GO_NOTE.encode().replace(b"you", b"\xff\xfe"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_notes_rejected(name):
    with pytest.raises(NoteError):
        open_note(MALFORMED[name], [Verifier.parse(GO_VKEY)])


def test_known_key_with_bad_signature_rejects_whole_note():
    a, b = KeySigner(generate_skey("A")), KeySigner(generate_skey("B"))
    note = sign_note("hello\n", [a, b])
    head, sig_b = note.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig_b))
    raw[10] ^= 1
    broken = head + " " + base64.b64encode(bytes(raw)).decode() + "\n"
    verifiers = [Verifier.parse(a.vkey), Verifier.parse(b.vkey)]
    assert open_note(note, verifiers)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(broken, verifiers)
    # Only A known: B's bad signature is ignored, as the spec says.
    assert open_note(broken, verifiers[:1]).verified == (verifiers[0],)


def _trust(*signers, **kw) -> TrustList:
    return TrustList([TrustedKey(Verifier.parse(s.vkey), **kw) for s in signers])


def test_checkpoint_roundtrip_and_strictness():
    signer = KeySigner(generate_skey(ORIGIN))
    trust = _trust(signer)
    root = Tree([leaf_hash(b"x")]).root()
    note = sign_note(checkpoint_text(ORIGIN, 1, root), [signer])
    cp = parse_checkpoint(note, trust, ORIGIN)
    assert (cp.origin, cp.size, cp.root) == (ORIGIN, 1, root)
    with pytest.raises(NoteError, match="origin"):
        parse_checkpoint(note, trust, "other.example/log")
    with pytest.raises(NoteError, match="extension"):
        parse_checkpoint(sign_note(checkpoint_text(ORIGIN, 1, root) + "ext\n", [signer]), trust)
    with pytest.raises(NoteError, match="leading zeros"):
        parse_checkpoint(sign_note(f"{ORIGIN}\n01\n{base64.b64encode(root).decode()}\n", [signer]), trust)
    with pytest.raises(NoteError, match="32 bytes"):
        parse_checkpoint(sign_note(f"{ORIGIN}\n1\nAAAA\n", [signer]), trust)
    with pytest.raises(NoteError, match="tree size 1"):
        parse_checkpoint(note, _trust(signer, valid_from_size=2))
    with pytest.raises(NoteError, match="tree size 1"):
        parse_checkpoint(note, TrustList([TrustedKey(Verifier.parse(signer.vkey), 0, 0, "retired")]))


def test_trust_list_parsing_errors_name_the_line():
    vkey = KeySigner(generate_skey(ORIGIN)).vkey
    good = TrustList.parse(f"# comment\n{vkey} valid_from_size=3 valid_to_size=9 status=retired\n")
    assert good.keys[0].covers(3) and good.keys[0].covers(9) and not good.keys[0].covers(10)
    for text, msg in [
        (f"{vkey} valid_from=3\n", "line 1: unexpected"),
        (f"\n{vkey} valid_from_size=x\n", "line 2: sizes"),
        (f"{vkey} valid_from_size=5 valid_to_size=2\n", "before"),
        (f"{vkey}\n{vkey}\n", "twice"),
        (vkey[:-2] + "AA\n", "line 1"),
        (f"{vkey} status=lost\n", "status"),
    ]:
        with pytest.raises(NoteError, match=msg):
            TrustList.parse(text)


def test_tlog_proof_format_and_parse():
    signer = KeySigner(generate_skey(ORIGIN))
    tree = Tree([leaf_hash(bytes([i])) for i in range(5)])
    note = sign_note(checkpoint_text(ORIGIN, 5, tree.root()), [signer])
    text = format_proof(3, tree.inclusion_proof(3, 5), note)
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 3\n")
    proof = parse_proof(text)
    assert proof.index == 3 and proof.checkpoint == note and list(proof.path) == tree.inclusion_proof(3, 5)
    with_extra = text.replace("index 3", "extra aGVsbG8=\nindex 3")
    assert parse_proof(with_extra).extra == b"hello" and parse_proof(with_extra).path == proof.path
    for bad in [
        text.replace("@v1", "@v2"),
        text.replace("index 3", "index 03"),
        text.replace("index 3\n", ""),
        text.replace("\n\n", "\n"),
        text.replace("index 3\n", "index 3\nAAAA\n"),
    ]:
        with pytest.raises(NoteError):
            parse_proof(bad)


def test_signer_repr_hides_private_key():
    signer = KeySigner(GO_SKEY)
    assert "AYEKFALV" not in repr(signer) and GO_VKEY in repr(signer)
