"""Witnesses: C2SP tlog-witness (add-checkpoint) and tlog-cosignature/v1 (timestamped Ed25519, type 0x04).

A witness is a separate party with its own key and state. For each log it knows (by the log's
verifier key) it remembers the latest (size, root) it cosigned, and cosigns a new checkpoint
only when given a consistency proof from that size: so whoever holds the log's directory and
its key still cannot rewrite or roll back history without the witnesses refusing. This module
holds the formats, the witness's decision (``Witness.add_checkpoint``) and the writer's client
(``cosign``); ``_witness_server`` serves the decision over HTTP.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import NoteError
from ._merkle import EMPTY_ROOT, verify_consistency
from ._note import (
    SIG_PREFIX,
    Checkpoint,
    TrustedKey,
    TrustList,
    Verifier,
    b64,
    parse_checkpoint,
    unb64,
    valid_name,
)

__all__ = [
    "COSIGNATURE",
    "WitnessKey",
    "WitnessSigner",
    "Witness",
    "Response",
    "cosign_message",
    "format_add_checkpoint",
    "parse_add_checkpoint",
    "verify_cosignatures",
    "cosign",
    "generate_witness_skey",
    "WitnessFailed",
    "Superseded",
    "ask_witnesses",
    "keep_cosignatures",
    "collect_cosignatures",
]

COSIGNATURE = 0x04
CONTENT_TYPE_SIZE = "text/x.tlog.size"


def _key_id(name: str, public_key: bytes) -> int:
    return int.from_bytes(sha256(name.encode() + b"\n" + bytes([COSIGNATURE]) + public_key).digest()[:4], "big")


def cosign_message(note_text: str, timestamp: int) -> bytes:
    """What a cosignature signs: ``cosignature/v1\\ntime <unix seconds>\\n`` then the checkpoint text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + note_text.encode()


@dataclass(frozen=True)
class WitnessKey:
    """A witness's verifier key ``<name>+<id>+<base64(0x04 || public key)>``."""

    name: str
    id: int
    public_key: bytes
    vkey: str

    @classmethod
    def parse(cls, vkey: str) -> WitnessKey:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3 or not valid_name(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise NoteError(f"witness key {vkey!r} is not <name>+<8 hex id>+<base64 key>")
        key = unb64(parts[2], f"witness key {vkey!r}")
        if len(key) != 33 or key[0] != COSIGNATURE:
            raise NoteError(f"witness key {vkey!r} is not a cosignature key (type 0x04, 32 bytes)")
        if _key_id(parts[0], key[1:]) != int(parts[1], 16):
            raise NoteError(f"witness key {vkey!r}: the key ID does not match the key")
        return cls(parts[0], int(parts[1], 16), key[1:], vkey.strip())

    def check(self, note_text: str, sig: bytes) -> int | None:
        """The cosignature's timestamp when ``sig`` (id || u64 time || signature) is valid, else None."""
        if len(sig) != 4 + 8 + 64 or int.from_bytes(sig[:4], "big") != self.id:
            return None
        timestamp = int.from_bytes(sig[4:12], "big")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(sig[12:], cosign_message(note_text, timestamp))
        except Exception:
            return None
        return timestamp


def generate_witness_skey(name: str) -> str:
    """A fresh witness key: ``PRIVATE+KEY+<name>+<id>+<base64(0x04 || seed)>``."""
    if not valid_name(name):
        raise NoteError(f"{name!r} is not a valid witness name (no spaces, no '+')")
    key = Ed25519PrivateKey.generate()
    kid = _key_id(name, key.public_key().public_bytes_raw())
    return f"PRIVATE+KEY+{name}+{kid:08x}+{b64(bytes([COSIGNATURE]) + key.private_bytes_raw())}"


class WitnessSigner:
    """A witness's private key (never shown in a repr)."""

    def __init__(self, skey: str):
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not valid_name(parts[2]):
            raise NoteError("the witness key is not PRIVATE+KEY+<name>+<id>+<key>")
        key = unb64(parts[4], "the witness key")
        if len(key) != 33 or key[0] != COSIGNATURE:
            raise NoteError("the witness key is not a cosignature key (type 0x04)")
        self._key = Ed25519PrivateKey.from_private_bytes(key[1:])
        self.name = parts[2]
        public = self._key.public_key().public_bytes_raw()
        self.key = WitnessKey(
            self.name,
            _key_id(self.name, public),
            public,
            f"{self.name}+{_key_id(self.name, public):08x}+{b64(bytes([COSIGNATURE]) + public)}",
        )

    def cosign(self, note_text: str, timestamp: int) -> str:
        """The cosignature line for a checkpoint text."""
        sig = self._key.sign(cosign_message(note_text, timestamp))
        body = self.key.id.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + sig
        return f"{SIG_PREFIX}{self.name} {b64(body)}\n"

    def __repr__(self) -> str:
        return f"WitnessSigner({self.key.vkey!r})"


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The tlog-witness add-checkpoint request body."""
    return (f"old {old_size}\n" + "".join(b64(p) + "\n" for p in proof) + "\n" + note).encode()


def parse_add_checkpoint(body: bytes) -> tuple[int, list[bytes], str]:
    """(old size, consistency proof, checkpoint note) from a request body; NoteError when malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("the request is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise NoteError("the request has no blank line before the checkpoint")
    lines = head.split("\n")
    match = re.fullmatch(r"old (0|[1-9][0-9]{0,19})", lines[0])
    if not match:
        raise NoteError("the request does not start with 'old <size>'")
    proof = [unb64(line, f"proof line {i}") for i, line in enumerate(lines[1:], 1)]
    if any(len(p) != 32 for p in proof) or len(proof) > 63:
        raise NoteError("the consistency proof has a hash that is not 32 bytes, or too many hashes")
    return int(match[1]), proof, note


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, content type, body."""

    status: int
    content_type: str
    body: bytes


class Witness:
    """The witness's state and decision: cosign only checkpoints consistent with the last one seen."""

    def __init__(self, signer: WitnessSigner, state: Path, logs: Sequence[str], clock: Callable[[], float] = time.time):
        self.signer = signer
        self.state = Path(state)
        self.logs: dict[str, Verifier] = {}
        for vkey in logs:
            verifier = Verifier.parse(vkey)
            self.logs[verifier.name] = verifier
        self.clock = clock

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state.read_text())
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.state.with_name(self.state.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state)

    def add_checkpoint(self, body: bytes) -> Response:
        """Handle ``POST /add-checkpoint`` (C2SP tlog-witness)."""
        try:
            old, proof, note = parse_add_checkpoint(body)
        except NoteError as exc:
            return Response(400, "text/plain", f"{exc}\n".encode())
        origin = note.split("\n", 1)[0]
        verifier = self.logs.get(origin)
        if verifier is None:
            return Response(404, "text/plain", b"unknown log origin\n")
        try:
            cp = parse_checkpoint(note, TrustList([TrustedKey(verifier)]), origin)
        except NoteError as exc:
            return Response(403, "text/plain", f"the checkpoint does not verify: {exc}\n".encode())
        if old > cp.size:
            return Response(400, "text/plain", b"old size is larger than the checkpoint\n")
        with open(self.state.with_name(self.state.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._load()
            known = data.get(origin) or {"size": 0, "root": b64(EMPTY_ROOT)}
            if old != known["size"]:
                return Response(409, CONTENT_TYPE_SIZE, f"{known['size']}\n".encode())
            if not verify_consistency(old, cp.size, unb64(known["root"], "state"), cp.root, proof):
                return Response(422, "text/plain", b"the consistency proof does not verify\n")
            data[origin] = {"size": cp.size, "root": b64(cp.root)}
            self._save(data)
        text = note[: note.rfind("\n\n") + 1]
        return Response(200, "text/plain", self.signer.cosign(text, int(self.clock())).encode())


def verify_cosignatures(checkpoint: Checkpoint, lines: str, keys: Sequence[WitnessKey]) -> tuple[set[str], list[str]]:
    """The witness keys (vkeys) with a valid cosignature on ``checkpoint`` among ``lines``, and problems.

    A line from a given key (name and ID) that does not verify is a problem; others are ignored."""
    text = checkpoint.note[: checkpoint.note.rfind("\n\n") + 1]
    by_id = {(k.name, k.id): k for k in keys}
    good: set[str] = set()
    problems: list[str] = []
    for line in lines.split("\n"):
        if not line.startswith(SIG_PREFIX):
            continue
        name, _, sig_b64 = line[len(SIG_PREFIX) :].partition(" ")
        try:
            sig = unb64(sig_b64, "cosignature")
        except NoteError:
            continue
        key = by_id.get((name, int.from_bytes(sig[:4], "big"))) if len(sig) >= 4 else None
        if key is None:
            continue
        if key.check(text, sig) is None:
            problems.append(f"the cosignature of witness {key.vkey} does not verify")
        else:
            good.add(key.vkey)
    return good, problems


class WitnessFailed(Exception):
    """A witness did not cosign."""


class Superseded(WitnessFailed):
    """The witness has already seen a larger checkpoint (``size``) of this log."""

    def __init__(self, size: int, message: str):
        super().__init__(message)
        self.size = size


def cosign(url: str, note: str, size: int, proof_from: Callable[[int], list[bytes]], timeout: float = 10.0) -> str:
    """Ask the witness at ``url`` to cosign; returns its cosignature line(s).

    Starts from the size the witness last saw (asked by a 409 when unknown), proving
    consistency with ``proof_from(old_size)``. Raises ``WitnessFailed`` when it refuses."""
    old = 0
    for _attempt in range(2):
        if old > size:
            raise Superseded(old, f"{url} has seen size {old}, larger than this checkpoint ({size}): rollback")
        body = format_add_checkpoint(old, proof_from(old), note)
        request = urllib.request.Request(
            url.rstrip("/") + "/add-checkpoint", data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace").strip()
            if exc.code == 409:
                try:
                    old = int(detail)
                except ValueError:
                    raise WitnessFailed(f"{url} answered 409 without a size") from None
                continue
            raise WitnessFailed(f"{url} refused ({exc.code}): {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise WitnessFailed(f"{url} cannot be reached: {exc}") from None
    raise WitnessFailed(f"{url} keeps answering 409")


def witness_files(directory: Path, size: int) -> Path:
    """Where the cosignatures of the checkpoint of ``size`` are kept: ``checkpoints/<size:020d>.cosig``."""
    return Path(directory) / "checkpoints" / f"{size:020d}.cosig"


def collect_cosignatures(directory: Path, note: str, size: int, witnesses: Sequence[Any]) -> list[str]:
    """Send a new checkpoint to each configured witness and keep their cosignatures; returns the failures.

    ``witnesses`` are ``{"url": ..., "key": vkey}`` mappings (the key checks the answer)."""
    lines, failures = ask_witnesses(directory, note, size, witnesses)
    keep_cosignatures(directory, size, lines)
    return [str(f) for f in failures]


def ask_witnesses(
    directory: Path, note: str, size: int, witnesses: Sequence[Any]
) -> tuple[list[str], list[WitnessFailed]]:
    """Each witness's cosignature lines for the checkpoint ``note`` of ``size`` (checked against its key
    when one is configured), and the refusals; the consistency proofs come from ``leafhashes.bin``."""
    from ._merkle import Tree

    tree: list[Any] = []

    def proof_from(old: int) -> list[bytes]:
        if not tree:
            with open(Path(directory) / "leafhashes.bin", "rb") as f:
                tree.append(Tree(f.read(size * 32)))
        return list(tree[0].consistency_proof(old, size))

    lines: list[str] = []
    failures: list[WitnessFailed] = []
    for spec in witnesses:
        url = spec.get("url") if isinstance(spec, dict) else None
        if not isinstance(url, str):
            failures.append(WitnessFailed(f"audit.witnesses entry {spec!r} has no url"))
            continue
        try:
            answer = cosign(url, note, size, proof_from)
            if isinstance(spec.get("key"), str):
                key = WitnessKey.parse(spec["key"])
                checkpoint = Checkpoint("", size, b"", note)
                good, bad = verify_cosignatures(checkpoint, answer, [key])
                if not good:
                    raise WitnessFailed(f"{url} answered without a valid cosignature by {key.vkey}: {bad}")
            lines.extend(line + "\n" for line in answer.split("\n") if line.startswith(SIG_PREFIX))
        except WitnessFailed as exc:
            failures.append(exc)
        except NoteError as exc:
            failures.append(WitnessFailed(str(exc)))
        except (OSError, ValueError) as exc:  # leafhashes.bin unreadable or short: no proof to send
            failures.append(WitnessFailed(f"{url}: cannot compute the consistency proof: {exc}"))
    return lines, failures


def keep_cosignatures(directory: Path, size: int, lines: Sequence[str]) -> None:
    """Add cosignature lines to ``checkpoints/<size>.cosig`` (each line once)."""
    if not lines:
        return
    path = witness_files(directory, size)
    old = path.read_text() if path.exists() else ""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(old + "".join(line for line in lines if line not in old))
    os.replace(tmp, path)
