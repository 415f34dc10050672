"""Checkpoint signers: what signs the audit log's checkpoints (the local key file, or a KMS or Vault key).

A ``checkpoint_signer`` hook returns an object with ``vkey`` and ``sign(message)``: a
:class:`Signer`. Its key must be Ed25519 and its name must be the log's origin.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Signer", "verifier_key"]


class Signer(Protocol):
    """Signs checkpoints: the local key file, or a KMS/Vault plugin."""

    @property
    def vkey(self) -> str:
        """The verifier key ``<name>+<hex id>+<base64(0x01 || public key)>``."""

    def sign(self, message: bytes) -> bytes:
        """A pure Ed25519 signature (64 bytes) over ``message``."""


def verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key (``Signer.vkey``) for a key ``name`` (the log origin) and a raw 32-byte Ed25519 public key."""
    from .audit._note import vkey_for

    return vkey_for(name, public_key)
