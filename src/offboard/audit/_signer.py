"""Checkpoint signers: the local Ed25519 key file, or whatever the ``checkpoint_signer`` hook returns."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..signing import Signer
from ._note import KeySigner, NoteError, Verifier, generate_skey

__all__ = ["FileSigner", "resolve_signer", "write_private"]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by the owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class FileSigner:
    """The built-in signer: an Ed25519 key in a 0600 file, created on first use."""

    def __init__(self, path: Path, name: str, *, create: bool = True):
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise NoteError(f"{self.path}: no signing key")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_private(self.path, generate_skey(name) + "\n")
            self.created = True
        else:
            self.created = False
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                raise NoteError(f"{self.path}: the signing key is readable by others (mode {mode:o}); chmod 600 it")
        try:
            self._signer = KeySigner(self.path.read_text())
        except (NoteError, UnicodeDecodeError) as exc:
            raise NoteError(f"{self.path}: {exc}") from None
        if self._signer.name != name:
            raise NoteError(f"{self.path}: the key is named {self._signer.name!r}, but the log origin is {name!r}")

    def __repr__(self) -> str:
        return f"FileSigner({str(self.path)!r}, {self.vkey!r})"

    @property
    def vkey(self) -> str:
        """The verifier key."""
        return self._signer.vkey

    @property
    def verifier(self) -> Verifier:
        """The parsed verifier key."""
        return Verifier.parse(self.vkey)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature over ``message``."""
        return self._signer.sign(message)


def resolve_signer(config: Any, data_dir: Path, key_file: Path, origin: str, pm: Any = None) -> Signer:
    """The ``checkpoint_signer`` hook's signer, else the local key file (created on first use)."""
    if pm is None:
        from ..plugins import get_plugin_manager

        pm = get_plugin_manager()
    signer = pm.hook.checkpoint_signer(config=config, data_dir=data_dir)
    if signer is None:
        return FileSigner(key_file, origin)
    for attr in ("vkey", "sign"):
        if not hasattr(signer, attr):
            raise NoteError(f"the checkpoint_signer plugin returned {signer!r}, which has no {attr!r}")
    verifier = Verifier.parse(signer.vkey)
    if verifier.name != origin:
        raise NoteError(f"the plugin signer's key is named {verifier.name!r}, but the log origin is {origin!r}")
    return signer
