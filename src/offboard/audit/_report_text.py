"""The report's fixed prose and one-line texts: how to verify it, a log entry, a deadline as ``--sla`` takes it."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from ._report import AuditReport

__all__ = ["entry_text", "how_to_verify", "sla_text"]


def e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def sla_text(seconds: int) -> str:
    """As ``--sla`` takes it: ``24h``, ``90m``, ``45s``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def how_to_verify(report: AuditReport) -> str:
    sla = sla_text(report.sla_seconds)
    period = report.period
    span = f" --from {period.start} --to {period.end}" if period.start and period.end else ""
    example = report.people[0].id if report.people else "PERSON"
    return f"""
<p>Nothing here needs to be taken on trust. With a copy of the audit log directory and the signing keys
obtained out of band (compare the SHA-256 fingerprint above), anyone can re-check every figure:</p>
<ol>
<li>Verify the whole log (exit 0 intact, 2 compliance findings only, 1 integrity failure):
<pre>offboard audit --log AUDIT_DIR verify --trusted-keys pinned-keys.txt --sla {e(sla)}</pre></li>
<li>Prove the log only grew since this report: save the checkpoint above as <code>checkpoint.note</code>, later run
<pre>offboard audit --log AUDIT_DIR consistency checkpoint.note --trusted-keys pinned-keys.txt</pre></li>
<li>For each sampled person, export and check their evidence bundle:
<pre>offboard audit --log AUDIT_DIR evidence {e(example)} --sla {e(sla)} --out evidence.zip
offboard audit verify-evidence evidence.zip --trusted-keys pinned-keys.txt</pre></li>
<li>Rebuild this report, or its rows for a spreadsheet:
<pre>offboard audit --log AUDIT_DIR report{e(span)} --sla {e(sla)} --out report.html
offboard audit --log AUDIT_DIR report{e(span)} --sla {e(sla)} --format csv --out report.csv</pre></li>
</ol>
<p>An evidence bundle (<code>offboard-evidence/v1</code>) is a zip holding the person\u2019s entries byte for byte
(<code>entries.jsonl</code>), one C2SP inclusion proof per entry (<code>proofs/SEQ.tlog-proof</code>), the signed
<code>checkpoint.note</code>, <code>keys.txt</code>, <code>summary.json</code>, <code>summary.csv</code> and
<code>summary.md</code> (recomputable from the entries), a <code>README.md</code> and <code>MANIFEST.sha256</code>.
To verify one without offboard: check the checkpoint\u2019s Ed25519 signature (a C2SP signed note), fold each proof from
SHA-256(0x00 || line) to the checkpoint\u2019s root hash (RFC 6962), check that each entry\u2019s
<code>person_prev</code> names the person\u2019s previous entry, and recompute the summaries. The format is
specified, with test vectors, in <code>docs/audit-format.md</code>; this report\u2019s contents in
<code>docs/auditors.md</code>.</p>
"""


def entry_text(obj: dict[str, Any]) -> str:
    kind = obj.get("type")
    account: dict[str, Any] = obj["account"] if isinstance(obj.get("account"), dict) else {}
    if kind == "action":
        return (
            f"{obj.get('system')} {account.get('name') or account.get('id')} {obj.get('kind')}: {obj.get('result')}"
            + (f" (ref {obj.get('reference')})" if obj.get("reference") else "")
            + (f"; {obj.get('error')}" if obj.get("error") else "")
        )
    if kind == "case_opened":
        return (
            f"case {obj.get('case')} opened by {obj.get('trigger')}, policy {obj.get('policy')}, "
            f"{len(obj.get('plan') or [])} planned actions; termination "
            f"{obj.get('termination_at')}; {obj.get('reason') or ''}"
        ).rstrip("; ")
    if kind == "case_closed":
        return (
            f"case {obj.get('case')} closed {obj.get('status')}; counts {json.dumps(obj.get('counts'), sort_keys=True)}"
        )
    if kind == "task":
        return f"task {obj.get('title') or obj.get('task')}: {obj.get('status')} by {obj.get('by') or '?'}" + (
            f" ({obj.get('note') or obj.get('reason')})" if obj.get("note") or obj.get("reason") else ""
        )
    rest = {k: v for k, v in obj.items() if k not in ("v", "log", "seq", "time", "type", "person", "person_prev")}
    return json.dumps(rest, sort_keys=True, ensure_ascii=False)[:300]
