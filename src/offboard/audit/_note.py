"""C2SP signed notes, verifier keys, trust lists, tlog-checkpoints and tlog-proofs."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import NoteError
from ..signing import Signer

__all__ = [
    "NoteError",
    "Signer",
    "KeySigner",
    "Verifier",
    "TrustedKey",
    "TrustList",
    "Note",
    "Checkpoint",
    "TlogProof",
    "key_id",
    "valid_name",
    "generate_skey",
    "sign_note",
    "open_note",
    "checkpoint_text",
    "parse_checkpoint",
    "format_proof",
    "parse_proof",
]

ED25519 = 0x01
SIG_PREFIX = "\u2014 "  # EM DASH, space
MAX_SIGNATURES = 100
PROOF_HEADER = "c2sp.org/tlog-proof@v1"


def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    """Strict standard base64: padded, no whitespace, canonical."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"{what} is not valid base64") from None
    if b64(data) != text:
        raise NoteError(f"{what} is not canonical base64")
    return data


def valid_name(name: str) -> bool:
    """A key name: non-empty, no whitespace, no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and name.isprintable()


def key_id(name: str, key: bytes) -> int:
    """The 4-byte key ID: SHA-256(name || 0x0A || type || public key)[:4] as an integer."""
    return int.from_bytes(sha256(name.encode() + b"\n" + key).digest()[:4], "big")


@dataclass(frozen=True)
class Verifier:
    """A parsed verifier key (Ed25519 only)."""

    name: str
    id: int
    public_key: bytes
    vkey: str

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex id>+<base64 key>``; the ID must match the key."""
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteError(f"verifier key {vkey!r} is not <name>+<id>+<key>")
        name, hex_id, key_b64 = parts
        if not valid_name(name):
            raise NoteError(f"verifier key {vkey!r} has an invalid name")
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError(f"verifier key {vkey!r}: the key ID must be 8 lowercase hex digits")
        key = unb64(key_b64, f"verifier key {vkey!r}")
        if len(key) != 33 or key[0] != ED25519:
            raise NoteError(f"verifier key {vkey!r} is not an Ed25519 key (type 0x01, 32 bytes)")
        if key_id(name, key) != int(hex_id, 16):
            raise NoteError(f"verifier key {vkey!r}: the key ID does not match the key")
        return cls(name, int(hex_id, 16), key[1:], vkey)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw public key, hex: what to compare out of band."""
        return sha256(self.public_key).hexdigest()

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature over ``message``."""
        if len(signature) != 64:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def vkey_for(name: str, public_key: bytes) -> str:
    """The verifier key string for a name and a raw Ed25519 public key."""
    key = bytes([ED25519]) + public_key
    return f"{name}+{key_id(name, key):08x}+{b64(key)}"


class KeySigner:
    """An in-memory Ed25519 signer, from a Go-style ``PRIVATE+KEY+name+id+key`` string."""

    def __init__(self, skey: str):
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("the signing key is not PRIVATE+KEY+<name>+<id>+<key>")
        name, hex_id, key_b64 = parts[2:]
        key = unb64(key_b64, "the signing key") if valid_name(name) else b""
        if len(key) != 33 or key[0] != ED25519:
            raise NoteError("the signing key is not an Ed25519 key with a valid name")
        self._key = Ed25519PrivateKey.from_private_bytes(key[1:])
        self.name = name
        public = self._key.public_key().public_bytes_raw()
        self._vkey = vkey_for(name, public)
        if self._vkey.split("+")[1] != hex_id:
            raise NoteError("the signing key's ID does not match the key")

    def __repr__(self) -> str:
        return f"KeySigner({self._vkey!r})"

    @property
    def vkey(self) -> str:
        """The verifier key."""
        return self._vkey

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature over ``message``."""
        return self._key.sign(message)


def generate_skey(name: str) -> str:
    """A fresh Ed25519 signing key in Go's ``PRIVATE+KEY+...`` format."""
    if not valid_name(name):
        raise NoteError(f"{name!r} is not a valid key name (no spaces, no '+')")
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes_raw()
    vkey = vkey_for(name, key.public_key().public_bytes_raw())
    return f"PRIVATE+KEY+{name}+{vkey.split('+')[1]}+{b64(bytes([ED25519]) + seed)}"


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """A signed note: ``text`` (non-empty lines ending in newline), a blank line, one line per signer."""
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteError("note text must be non-empty lines, each ending in a newline")
    _check_chars(text)
    message = text.encode()
    lines = []
    for signer in signers:
        verifier = Verifier.parse(signer.vkey)
        signature = signer.sign(message)
        if not verifier.verify(message, signature):
            raise NoteError(f"the signer for {verifier.vkey} returned a signature that does not verify")
        lines.append(f"{SIG_PREFIX}{verifier.name} {b64(verifier.id.to_bytes(4, 'big') + signature)}\n")
    if not lines:
        raise NoteError("a note needs at least one signature")
    return text + "\n" + "".join(lines)


@dataclass(frozen=True)
class Note:
    """An opened note: its text and which keys signed it."""

    text: str
    verified: tuple[Verifier, ...]
    unknown: tuple[str, ...] = ()


def _check_chars(text: str) -> None:
    for ch in text:
        if ch < " " and ch != "\n":
            raise NoteError(f"the note contains the control character {ch!r}")


def open_note(message: bytes | str, known: Iterable[Verifier]) -> Note:
    """Parse and verify a signed note strictly (C2SP signed-note, as Go's ``note.Open``).

    Signatures from unknown keys are ignored; a known key whose signature fails rejects the
    whole note; at least one known key must verify.
    """
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the note is not valid UTF-8") from None
    _check_chars(message)
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line before its signatures")
    text, sigs = message[: split + 1], message[split + 2 :]
    if not text.strip("\n") or text.startswith("\n"):
        raise NoteError("the note text is empty")
    if not sigs or not sigs.endswith("\n"):
        raise NoteError("the note's signature block is empty or does not end in a newline")
    by_key = {(v.name, v.id): v for v in known}
    verified: list[Verifier] = []
    unknown: list[str] = []
    seen: set[tuple[str, int]] = set()
    body = text.encode()
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has more than {MAX_SIGNATURES} signatures")
    for number, line in enumerate(lines, 1):
        if not line.startswith(SIG_PREFIX):
            raise NoteError(f"signature line {number} does not start with an em dash and a space")
        name, _, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not valid_name(name) or not sig_b64:
            raise NoteError(f"signature line {number} is malformed")
        sig = unb64(sig_b64, f"signature line {number}")
        if len(sig) < 5:
            raise NoteError(f"signature line {number} is too short")
        ident = (name, int.from_bytes(sig[:4], "big"))
        verifier = by_key.get(ident)
        if verifier is None:
            unknown.append(line)
            continue
        if ident in seen:
            continue
        seen.add(ident)
        if not verifier.verify(body, sig[4:]):
            raise NoteError(f"the signature of known key {verifier.vkey} does not verify")
        verified.append(verifier)
    if not verified:
        raise NoteError("no signature from a trusted key (signed by an unknown key, or not signed)")
    return Note(text, tuple(verified), tuple(unknown))


@dataclass(frozen=True)
class TrustedKey:
    """One line of a trust list: a verifier key and the tree sizes it may sign."""

    verifier: Verifier
    valid_from_size: int = 0
    valid_to_size: int | None = None
    status: str = "active"

    def covers(self, size: int) -> bool:
        """Whether this key may sign a checkpoint of ``size``.

        A ``retired`` or ``compromised`` key is trusted only up to its ``valid_to_size`` (for no
        size at all without one); an ``active`` key up to ``valid_to_size`` when it has one."""
        if self.valid_to_size is None:
            return self.status == "active" and self.valid_from_size <= size
        return self.valid_from_size <= size <= self.valid_to_size

    def line(self) -> str:
        """The trust-list line."""
        out = f"{self.verifier.vkey} valid_from_size={self.valid_from_size}"
        if self.valid_to_size is not None:
            out += f" valid_to_size={self.valid_to_size}"
        return out + f" status={self.status}"


@dataclass
class TrustList:
    """Pinned verifier keys with validity ranges (``trusted-keys.txt``)."""

    keys: list[TrustedKey] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str, where: str = "trusted-keys") -> TrustList:
        """Parse ``<vkey> [valid_from_size=N] [valid_to_size=M] [status=...]`` lines; '#' comments."""
        keys: list[TrustedKey] = []
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.split("#", 1)[0].strip(" \t\r")
            if not line:
                continue
            vkey, *options = re.split(r"[ \t\r]+", line)
            try:
                verifier = Verifier.parse(vkey)
            except NoteError as exc:
                raise NoteError(f"{where} line {number}: {exc}") from None
            values: dict[str, str] = {}
            for option in options:
                key, eq, value = option.partition("=")
                if not eq or key not in ("valid_from_size", "valid_to_size", "status") or key in values:
                    raise NoteError(f"{where} line {number}: unexpected {option!r}")
                values[key] = value
            if any(
                not re.fullmatch(r"[0-9]{1,20}", values[k]) for k in ("valid_from_size", "valid_to_size") if k in values
            ):
                raise NoteError(f"{where} line {number}: sizes must be decimal integers (digits 0-9 only)")
            start = int(values.get("valid_from_size", "0"))
            end = int(values["valid_to_size"]) if "valid_to_size" in values else None
            status = values.get("status", "active")
            if status not in ("active", "retired", "compromised"):
                raise NoteError(f"{where} line {number}: status must be active, retired or compromised")
            if start < 0 or (end is not None and end < start):
                raise NoteError(f"{where} line {number}: valid_to_size is before valid_from_size")
            if any(k.verifier.vkey == vkey for k in keys):
                raise NoteError(f"{where} line {number}: {vkey} is listed twice")
            keys.append(TrustedKey(verifier, start, end, status))
        return cls(keys)

    def text(self) -> str:
        """The file contents."""
        return "".join(k.line() + "\n" for k in self.keys)

    @property
    def names(self) -> set[str]:
        """The key names (each should equal a log origin)."""
        return {k.verifier.name for k in self.keys}

    def find(self, vkey: str) -> TrustedKey | None:
        """The entry for ``vkey``."""
        return next((k for k in self.keys if k.verifier.vkey == vkey), None)

    def open(self, message: bytes | str, size: int | None = None) -> Note:
        """Open a note; when ``size`` is given, one signer must be trusted for that size."""
        note = open_note(message, [k.verifier for k in self.keys])
        if size is not None:
            self.check_signers(note, size)
        return note

    def check_signers(self, note: Note, size: int) -> None:
        """One of ``note``'s verified signers must be trusted for tree ``size``, and none compromised for it."""
        for k in self.keys:
            if k.status == "compromised" and not k.covers(size) and k.verifier in note.verified:
                raise NoteError(
                    f"signed by {k.verifier.vkey}, which the trust list marks compromised "
                    + (f"after size {k.valid_to_size}" if k.valid_to_size is not None else "for every size")
                )
        valid = {k.verifier for k in self.keys if k.covers(size)}
        if not valid.intersection(note.verified):
            raise NoteError(f"no signature from a key trusted for tree size {size} (check the keys' validity ranges)")


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The tlog-checkpoint note text: origin, size, base64 root; no extension lines."""
    return f"{origin}\n{size}\n{b64(root)}\n"


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint."""

    origin: str
    size: int
    root: bytes
    note: str
    signers: tuple[Verifier, ...] = ()


def parse_checkpoint(message: bytes | str, trust: TrustList, origin: str | None = None) -> Checkpoint:
    """Open and verify a checkpoint note against ``trust`` (and ``origin`` when given)."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("the checkpoint is not valid UTF-8") from None
    note = trust.open(message)
    lines = note.text.split("\n")[:-1]
    if len(lines) < 3:
        raise NoteError("the checkpoint text needs an origin, a size and a root hash")
    if len(lines) > 3:
        raise NoteError("the checkpoint has extension lines (this log writes none)")
    cp_origin, size_text, root_text = lines
    if origin is not None and cp_origin != origin:
        raise NoteError(f"the checkpoint's origin is {cp_origin!r}, expected {origin!r}")
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", size_text):
        raise NoteError(f"the checkpoint size {size_text!r} is not a decimal without leading zeros")
    root = unb64(root_text, "the checkpoint root hash")
    if len(root) != 32:
        raise NoteError("the checkpoint root hash is not 32 bytes")
    size = int(size_text)
    trust.check_signers(note, size)
    signers = tuple(v for v in note.verified if v.name == cp_origin)
    if not signers:
        raise NoteError(f"no trusted key named after the origin {cp_origin!r} signed the checkpoint")
    return Checkpoint(cp_origin, size, root, message, signers)


@dataclass(frozen=True)
class TlogProof:
    """A parsed ``c2sp.org/tlog-proof@v1``; the checkpoint is not yet verified."""

    index: int
    path: tuple[bytes, ...]
    checkpoint: str
    extra: bytes | None = None


def format_proof(index: int, path: Sequence[bytes], checkpoint: str) -> str:
    """A C2SP tlog-proof: header, index, path lines, blank line, checkpoint."""
    return PROOF_HEADER + f"\nindex {index}\n" + "".join(b64(p) + "\n" for p in path) + "\n" + checkpoint


def parse_proof(text: str) -> TlogProof:
    """Parse a tlog-proof strictly; the ``extra`` line is returned but never trusted."""
    head, sep, checkpoint = text.partition("\n\n")
    if not sep or not checkpoint:
        raise NoteError("the proof has no blank line followed by a checkpoint")
    lines = head.split("\n")
    if lines[0] != PROOF_HEADER:
        raise NoteError(f"the proof does not start with {PROOF_HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = unb64(rest.pop(0)[6:], "the proof's extra line")
    if not rest or not re.fullmatch(r"index (0|[1-9][0-9]{0,19})", rest[0]):
        raise NoteError("the proof's index line is missing or malformed")
    index = int(rest[0][6:])
    path = []
    for number, line in enumerate(rest[1:], 1):
        digest = unb64(line, f"proof hash line {number}")
        if len(digest) != 32:
            raise NoteError(f"proof hash line {number} is not a SHA-256 hash")
        path.append(digest)
    return TlogProof(index, tuple(path), checkpoint, extra)
