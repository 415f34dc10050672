"""The signed, tamper-evident audit log: RFC 6962 Merkle tree, C2SP checkpoints, per-person evidence."""

from __future__ import annotations

import socket

from ._entry import EntryError, canonical, parse_entry
from ._evidence import EvidenceReport, build_evidence, verify_evidence
from ._log import AuditError, AuditLog, FileStore, read_origin
from ._merkle import Tree, leaf_hash, verify_consistency, verify_inclusion
from ._note import Checkpoint, KeySigner, NoteError, Signer, TrustList, Verifier, parse_checkpoint
from ._signer import FileSigner, resolve_signer
from ._verify import Report, load_trust, verify_log


def use_database(audit: AuditLog, rows: object) -> AuditLog:
    """Sequence ``audit`` through PostgreSQL (``execution: distributed``); ``rows`` is ``store.audit_rows()``."""
    from ._database import use_database as attach

    return attach(audit, rows)


__all__ = [
    "AuditError",
    "AuditLog",
    "Checkpoint",
    "EntryError",
    "EvidenceReport",
    "FileSigner",
    "FileStore",
    "KeySigner",
    "NoteError",
    "Report",
    "Signer",
    "Tree",
    "TrustList",
    "Verifier",
    "build_evidence",
    "canonical",
    "default_origin",
    "leaf_hash",
    "load_trust",
    "parse_checkpoint",
    "parse_entry",
    "read_origin",
    "resolve_signer",
    "verify_consistency",
    "verify_evidence",
    "verify_inclusion",
    "verify_log",
    "use_database",
]


def default_origin() -> str:
    """``<host>/offboard/audit/v1``: a schema-less URL naming this log (set ``audit.origin`` to choose)."""
    host = "".join(c for c in socket.getfqdn().lower() if c.isalnum() or c in ".-") or "localhost"
    return f"{host}/offboard/audit/v1"
