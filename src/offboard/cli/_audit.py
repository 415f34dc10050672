"""``offboard audit``: verify the signed audit log, show entries, export and check per-person evidence, report."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, overload

import click

from ..audit import (
    AuditError,
    AuditLog,
    NoteError,
    Tree,
    build_evidence,
    leaf_hash,
    load_trust,
    read_origin,
    verify_consistency,
    verify_evidence,
    verify_log,
)
from ..audit._cases import sla_seconds
from ..audit._log import CHECKPOINTS, ENTRIES, LATEST, TRUSTED_KEYS
from ..audit._note import b64, parse_checkpoint
from ..audit._witness import WitnessKey
from ..config._paths import data_dir
from ..errors import OffboardError

__all__ = ["audit"]


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _log_dir(ctx: click.Context) -> Path:
    return ctx.obj["log"] if ctx.obj and ctx.obj.get("log") else data_dir(create=False) / "audit"


def _trust(path: Path | None, log: Path, code: int):
    try:
        return load_trust(path or log / TRUSTED_KEYS)
    except NoteError as exc:
        _fail(str(exc), code)


@overload
def _sla(value: str) -> int: ...


@overload
def _sla(value: None) -> None: ...


def _sla(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return sla_seconds(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--sla") from None


def _lines(log: Path) -> list[bytes]:
    try:
        data = (log / ENTRIES).read_bytes()
    except FileNotFoundError:
        _fail(f"no audit log at {log}", 2)
    return data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]


@contextmanager
def _writer(log: Path) -> Iterator[AuditLog]:
    """The log opened for writing, with the state store's record of every checkpoint signed (audit_seals)."""
    from ..state._store import Store

    ctx = click.get_current_context()
    root = ctx.find_root().obj
    if root is not None and hasattr(root, "config"):
        config = root.config
    else:
        from ..config._config import load_config

        config = load_config()
    store = Store.open(config.store, data_dir())
    try:
        witnesses = config.audit.get("witnesses")
        with AuditLog.open(log, read_origin(log), seals=store.audit_seals, witnesses=witnesses) as writer:
            yield writer
    finally:
        store.close()


def _seal(log: Path, trust: Any) -> None:
    """Sign a checkpoint over entries appended since the latest one (a running engine may seal them later)."""
    try:
        latest = parse_checkpoint((log / CHECKPOINTS / LATEST).read_bytes(), trust)
    except (FileNotFoundError, NoteError):
        latest = None
    if latest is not None and _sealed_to_the_end(log, latest.origin, latest.size):
        return
    if latest is None or len(_lines(log)) != latest.size:
        with _writer(log) as writer:
            writer.checkpoint()


def _sealed_to_the_end(log: Path, origin: str, sealed: int) -> bool:
    """Whether the per-person index covers exactly the ``sealed`` entries and no complete line follows
    them: then nothing is left to seal, known without reading the log (the index is advisory: when it
    disagrees, the caller counts the lines; evidence built afterwards checks every line it uses)."""
    from ..audit._index import read_state

    state = read_state(log, origin)
    if state is None or state.size != sealed:
        return False
    try:
        with open(log / ENTRIES, "rb") as f:
            if os.fstat(f.fileno()).st_size < state.offset:  # shorter than what was sealed: not ours to judge here
                return False
            f.seek(state.offset)
            return b"\n" not in f.read()
    except FileNotFoundError:
        _fail(f"no audit log at {log}", 2)


def _pins(paths: tuple[Path, ...], trust: Any, code: int) -> list[tuple[str, Any]]:
    """Pinned checkpoints, each read and verified against the trust list."""
    out = []
    for path in paths:
        try:
            out.append((str(path), parse_checkpoint(path.read_bytes(), trust)))
        except OSError as exc:
            _fail(f"cannot read pinned checkpoint {path}: {exc.strerror}", code)
        except NoteError as exc:
            _fail(f"pinned checkpoint {path}: {exc}", code)
    return out


def _writable(log: Path) -> bool:
    return os.access(log, os.W_OK) and os.access(log / ENTRIES, os.W_OK)


@click.group("audit")
@click.option(
    "--log",
    "log_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Audit log directory (default: DATA_DIR/audit); point it at a copy to verify offline.",
)
@click.pass_context
def audit(ctx: click.Context, log_dir: Path | None) -> None:
    """Verify the signed audit log and export per-person evidence."""
    ctx.ensure_object(dict)
    ctx.obj["log"] = log_dir


@audit.command()
@click.option(
    "--trusted-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pinned trust list (default: the log's own trusted-keys.txt; pin a copy out of band).",
)
@click.option(
    "--pinned",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="A checkpoint you kept earlier; proves no rollback or fork since. Repeatable.",
)
@click.option(
    "--sla", help="Flag cases whose last verified action came later than this after termination (24h, 4h...)."
)
@click.option("--origin", help="Expected log origin (default: the trusted key's name).")
@click.option("--strict", is_flag=True, help="Treat entries after the latest checkpoint as a failure.")
@click.option("--witness-key", "witness_keys", multiple=True, help="A witness's verifier key (vkey). Repeatable.")
@click.option(
    "--min-witnesses", type=click.IntRange(0), help="Cosignatures the newest checkpoint needs (default: one per key)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
@click.pass_context
def verify(ctx, trusted_keys, pinned, sla, origin, strict, witness_keys, min_witnesses, as_json) -> None:
    """Check the whole log. Exit 0 intact, 1 integrity failure, 2 compliance findings only."""
    log = _log_dir(ctx)
    sla_seconds = _sla(sla)
    if not (log / ENTRIES).exists() and not (log / CHECKPOINTS).exists():
        # nothing there is a usage problem; entries deleted beside their checkpoints is tampering (below)
        _fail(f"no audit log at {log} (point --log at one, or check --data-dir / OFFBOARD_HOME)", 2)
    trust = _trust(trusted_keys, log, 1)
    pins = []
    for path in pinned:
        try:
            pins.append((str(path), path.read_bytes()))
        except OSError as exc:
            _fail(f"cannot read pinned checkpoint {path}: {exc.strerror}", 1)
    try:
        keys = [WitnessKey.parse(k) for k in witness_keys]
        report = verify_log(
            log,
            trust,
            origin=origin,
            pinned=pins,
            sla_seconds=sla_seconds,
            strict=strict,
            witness_keys=keys,
            min_witnesses=len(keys) if min_witnesses is None else min_witnesses,
        )
    except (AuditError, NoteError, OSError) as exc:
        _fail(str(exc), 1)
    if trusted_keys is None:
        report.trust_source = f"{log / TRUSTED_KEYS} (the log's own copy: pin one out of band)"
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, sort_keys=True))
        sys.exit(report.exit_code)
    cp = report.checkpoint
    click.echo(
        f"audit log {report.origin}: {report.size} entries, latest valid checkpoint size {cp.size if cp else 'none'}"
    )
    click.echo(f"trusted keys: {report.trust_source}")
    for severity, title in (
        ("integrity", "INTEGRITY FAILURES"),
        ("finding", "COMPLIANCE FINDINGS"),
        ("warning", "warnings"),
    ):
        problems = report.of(severity)
        if problems:
            click.echo(f"{title} ({len(problems)}):")
            for p in problems:
                click.echo(f"  - {p.where}: {p.what}")
    status = {0: "intact", 1: "INTEGRITY FAILURE", 2: "intact, with compliance findings"}[report.exit_code]
    click.echo(f"result: {status}")
    if cp and report.exit_code != 1:
        click.echo("latest checkpoint (keep it to pin with --pinned next time):")
        click.echo(cp.note, nl=False)
    sys.exit(report.exit_code)


def _summary_row(obj: dict[str, Any]) -> list[str]:
    person: dict[str, Any] = obj["person"] if isinstance(obj.get("person"), dict) else {}
    account: dict[str, Any] = obj["account"] if isinstance(obj.get("account"), dict) else {}
    return [
        str(obj.get("seq")),
        str(obj.get("time")),
        str(obj.get("type")),
        str(obj.get("case") or ""),
        str(person.get("id") or ""),
        str(obj.get("system") or ""),
        str(account.get("name") or account.get("id") or ""),
        str(obj.get("kind") or ""),
        str(obj.get("result") or obj.get("status") or ""),
    ]


@audit.command()
@click.option("--person", help="Only entries about this person id.")
@click.option("--case", "case_id", help="Only entries of this case.")
@click.option("--type", "entry_type", help="Only entries of this type (action, case_opened, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON lines, exactly as logged.")
@click.pass_context
def show(ctx, person, case_id, entry_type, as_json) -> None:
    """List audit entries (no verification: use 'verify' for that)."""
    rows = []
    for line in _lines(_log_dir(ctx)):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        who = obj.get("person") if isinstance(obj.get("person"), dict) else {}
        if person and who.get("id") != person and who.get("employee_id") != person:
            continue
        if case_id and obj.get("case") != case_id:
            continue
        if entry_type and obj.get("type") != entry_type:
            continue
        if as_json:
            click.echo(line.decode("utf-8", "replace"))
        else:
            rows.append(_summary_row(obj))
    if as_json:
        return
    header = ["seq", "time", "type", "case", "person", "system", "account", "kind", "result"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


@audit.command()
@click.argument("person")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The zip to write.")
@click.option("--sla", default="24h", show_default=True, help="SLA to report against.")
@click.option(
    "--pinned",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="An auditor's earlier checkpoint: the bundle carries the consistency proof from it. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def evidence(ctx, person, out, sla, pinned, as_json) -> None:
    """Export PERSON's entries, proofs, checkpoint and summary as a zip (nobody else's data)."""
    log = _log_dir(ctx)
    sla_seconds = _sla(sla)
    trust = _trust(None, log, 2)
    pins = [cp for _, cp in _pins(pinned, trust, 2)]
    try:
        _seal(log, trust)
        summary = build_evidence(log, person, out, trust, sla_seconds=sla_seconds, pinned=pins)
    except (OffboardError, OSError) as exc:
        hint = " (`offboard status` lists the people with cases)" if str(exc).startswith("no audit entries") else ""
        _fail(f"{exc}{hint}", 2)
    if as_json:
        from ._main import emit_json

        emit_json({"out": str(out), **summary})
        return
    click.echo(
        f"wrote {out}: {len(summary['entries'])} entries for person {summary['person']} in "
        f"{len(summary['cases'])} case(s), checkpoint size {summary['checkpoint']['size']}"
    )


def _leavers(ctx: click.Context, path: Path | None) -> Any:
    """HR's leavers: the --leavers file, else the configured people sources, else None."""
    from ..audit._reconcile import from_sources, leavers_from_csv
    from ..errors import OffboardError
    from ..inventory._people import configured_sources

    if path is not None:
        try:
            return leavers_from_csv(path)
        except ValueError as exc:
            _fail(f"--leavers: {exc}", 2)
    root = ctx.find_root().obj
    try:
        if root is not None and hasattr(root, "config"):
            config = root.config
        else:
            from ..config._config import load_config

            config = load_config()
        return from_sources(configured_sources(config))
    except OffboardError as exc:
        _fail(f"{exc} (or pass HR's list with --leavers FILE)", 2)


@audit.command()
@click.option("--from", "start", required=True, metavar="DATE", help="First day of the period (YYYY-MM-DD, UTC).")
@click.option("--to", "end", required=True, metavar="DATE", help="Last day of the period, inclusive (YYYY-MM-DD, UTC).")
@click.option(
    "--sla",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="The deadline from termination to the last account revoked (24h, 4h, 90m, 2d).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="The file to write (default: standard output)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "csv"]),
    default="html",
    show_default=True,
    help="One self-contained HTML page, or one CSV row per account action.",
)
@click.option(
    "--leavers",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HR's list of leavers (CSV: a person or email column and a termination date column) to reconcile "
    "against; default: the configured people sources.",
)
@click.option(
    "--person",
    "sample",
    multiple=True,
    metavar="PERSON",
    help="Only this person (id or employee id); repeat for an auditor's sample.",
)
@click.option(
    "--trusted-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pinned trust list (default: the log's own trusted-keys.txt; pin a copy out of band).",
)
@click.option(
    "--seal/--no-seal",
    default=None,
    help="Sign a checkpoint over entries not yet sealed before reporting (default: when the log is writable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on standard output (needs --out).")
@click.pass_context
def report(ctx, start, end, sla, out, fmt, leavers, sample, trusted_keys, seal, as_json) -> None:
    """Write the auditors' report for a period: per person, termination and access-removal times.

    Built only from a log that verifies (exit 1 and where it fails otherwise); exit 2 for bad input.
    The report covers the entries under the newest checkpoint; by default the command seals first.
    """
    from ..audit._report import Period, ReportError, build_report
    from ..audit._report_csv import report_csv
    from ..audit._report_html import render_report, unsealed_notice

    if as_json and (out is None or str(out) == "-"):
        _fail("--json prints the summary, so the report needs a file: add --out FILE", 2)
    try:
        period = Period.parse(start, end)
    except ValueError as exc:
        _fail(str(exc), 2)
    try:
        limit = sla_seconds(sla)
    except ValueError as exc:
        _fail(f"--sla: {exc}", 2)
    log = _log_dir(ctx)
    trust = _trust(trusted_keys, log, 1) if trusted_keys else None
    hr = _leavers(ctx, leavers)
    if seal or (seal is None and (log / ENTRIES).exists() and _writable(log)):
        try:
            _seal(log, _trust(None, log, 2))
        except (OffboardError, OSError):
            pass  # the writer refuses to sign a log it cannot prove: the verification below says where it fails
    try:
        built = build_report(
            log,
            trust,
            period=period,
            sla_seconds=limit,
            people=sample or None,
            leavers=hr,
            trust_source=str(trusted_keys) if trusted_keys else None,
        )
    except ReportError as exc:
        _fail(str(exc), exc.code)
    except OSError as exc:
        _fail(f"cannot read the audit log at {log}: {exc.strerror or exc}", 2)
    text = render_report(built) if fmt == "html" else report_csv(built)
    if out is None or str(out) == "-":
        click.echo(text, nl=False)
    else:
        try:
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(text, encoding="utf-8", newline="")
            tmp.replace(out)
        except OSError as exc:
            _fail(f"cannot write {out}: {exc.strerror or exc}", 2)
    s = built.summary()
    if as_json:
        from ._main import emit_json

        emit_json({"out": str(out), "format": fmt, "checkpoint_size": built.checkpoint.size, **s})
    click.echo(
        f"{'wrote ' + str(out) if out is not None and str(out) != '-' else 'report'}: {s['people']} people, "
        f"{s['cases']} cases ({s['complete']} complete, {s['incomplete']} incomplete, {s['open']} open), "
        f"{len(s['over_deadline'])} over the {sla} deadline; verified at checkpoint size {built.checkpoint.size}",
        err=True,
    )
    if built.unsealed:
        click.echo(unsealed_notice(built), err=True)
    reconciliation = built.reconciliation
    missing = reconciliation.missing if reconciliation else []
    if reconciliation and missing:
        click.echo(
            f"{len(missing)} leaver(s) from {reconciliation.source} have no case: "
            + ", ".join(x.ref for x in missing[:10])
            + (" ..." if len(missing) > 10 else ""),
            err=True,
        )


@audit.command("verify-evidence")
@click.argument("bundle", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--trusted-keys", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The pinned trust list."
)
@click.option("--sla", help="Judge the SLA with this (default: the SLA the bundle was exported with).")
@click.option(
    "--pinned",
    type=click.Path(dir_okay=False, path_type=Path),
    multiple=True,
    help="A checkpoint you kept earlier: the bundle must prove the log only grew since. Repeatable.",
)
@click.option("--witness-key", "witness_keys", multiple=True, help="A witness's verifier key (vkey). Repeatable.")
@click.option(
    "--min-witnesses", type=click.IntRange(0), help="Cosignatures the checkpoint needs (default: one per key)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report.")
def verify_evidence_cmd(bundle, trusted_keys, sla, pinned, witness_keys, min_witnesses, as_json) -> None:
    """Check an evidence zip: proofs, signature, completeness and summary. Exit 0, 1 or 2 as verify."""
    sla_seconds = _sla(sla)
    trust = _trust(trusted_keys, Path("."), 1)
    try:
        keys = [WitnessKey.parse(k) for k in witness_keys]
    except NoteError as exc:
        _fail(str(exc), 1)
    report = verify_evidence(
        bundle,
        trust,
        sla_seconds,
        pinned=_pins(pinned, trust, 1),
        witness_keys=keys,
        min_witnesses=len(keys) if min_witnesses is None else min_witnesses,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "bundle": str(bundle),
                    "person": report.person,
                    "entries": report.entries,
                    "checkpoint_size": report.checkpoint.size if report.checkpoint else None,
                    "exit_code": report.exit_code,
                    "problems": report.problems,
                    "findings": report.findings,
                },
                indent=2,
                sort_keys=True,
            )
        )
        sys.exit(report.exit_code)
    click.echo(
        f"{bundle}: person {report.person}, {report.entries} entries, "
        f"checkpoint size {report.checkpoint.size if report.checkpoint else 'none'}"
    )
    for title, items in (("INTEGRITY FAILURES", report.problems), ("COMPLIANCE FINDINGS", report.findings)):
        if items:
            click.echo(f"{title} ({len(items)}):")
            for item in items:
                click.echo(f"  - {item}")
    click.echo(
        "result: " + {0: "verified", 1: "INTEGRITY FAILURE", 2: "verified, with compliance findings"}[report.exit_code]
    )
    sys.exit(report.exit_code)


@audit.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--trusted-keys",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pinned trust list (default: the log's own trusted-keys.txt).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the proof as JSON.")
@click.pass_context
def consistency(ctx, checkpoint, trusted_keys, as_json) -> None:
    """Prove the log only grew since CHECKPOINT (one you kept). Exit 0 consistent, 1 not."""
    log = _log_dir(ctx)
    trust = _trust(trusted_keys, log, 1)
    try:
        old = parse_checkpoint(checkpoint.read_bytes(), trust)
        new = parse_checkpoint((log / CHECKPOINTS / LATEST).read_bytes(), trust, old.origin)
    except (NoteError, OSError) as exc:
        _fail(str(exc), 1)
    lines = _lines(log)
    if old.size > new.size:
        _fail(f"rollback: the pinned checkpoint has size {old.size}, the log's latest only {new.size}", 1)
    if len(lines) < new.size:
        _fail(f"the log has {len(lines)} entries but its latest checkpoint covers {new.size}", 1)
    tree = Tree([leaf_hash(line) for line in lines[: new.size]])
    if tree.root() != new.root:
        _fail("the entries do not match the latest checkpoint; run 'offboard audit verify'", 1)
    proof = tree.consistency_proof(old.size, new.size)
    ok = verify_consistency(old.size, new.size, old.root, new.root, proof)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "consistent": ok,
                    "old": {"size": old.size, "root": b64(old.root)},
                    "new": {"size": new.size, "root": b64(new.root), "checkpoint": new.note},
                    "proof": [b64(p) for p in proof],
                },
                indent=2,
                sort_keys=True,
            )
        )
    else:
        verdict = "consistent: the log only grew" if ok else "NOT CONSISTENT: the log was rewritten (fork)"
        click.echo(f"{verdict} from size {old.size} to {new.size}")
        click.echo(f"old root {b64(old.root)}\nnew root {b64(new.root)}")
        click.echo("consistency proof (RFC 9162, base64, one hash per line):")
        for p in proof:
            click.echo(b64(p))
        click.echo("new checkpoint:")
        click.echo(new.note, nl=False)
    sys.exit(0 if ok else 1)


@audit.command("rotate-key")
@click.option("--reason", default="scheduled rotation", show_default=True, help="Recorded in the key_rotation entry.")
@click.option("--approver", help="Who approved the rotation (recorded).")
@click.option("--json", "as_json", is_flag=True, help="Print the old and new keys as JSON.")
@click.pass_context
def rotate_key(ctx, reason, approver, as_json) -> None:
    """Replace the local signing key; the next checkpoint is signed by both keys."""
    log = _log_dir(ctx)
    try:
        with _writer(log) as writer:
            old, new = writer.rotate_key(reason, approver)
            trust_text = (log / TRUSTED_KEYS).read_text()
    except (OffboardError, OSError) as exc:
        _fail(str(exc), 2)
    if as_json:
        click.echo(json.dumps({"old": old, "new": new, "trusted_keys": trust_text}, indent=2))
        return
    click.echo(f"retired {old}\nactive  {new}")
    click.echo(f"publish the updated trust list ({log / TRUSTED_KEYS}) to your auditors:")
    click.echo(trust_text, nl=False)
