"""``offboard config show`` and ``offboard config check``: the effective configuration and whether it works."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._main import EXIT_INCOMPLETE, EXIT_OK, App, emit_json

__all__ = ["config"]

REFERENCE_SCHEMES = ("env:", "file:")


@click.group("config")
def config() -> None:
    """Show the effective configuration and check that it works."""


def key_lines(path: Path) -> dict[tuple[str, ...], int]:
    """The line (1-based) of every mapping key in the YAML file at ``path``, by its key path."""
    import yaml

    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*prefix, str(key.value))
                lines[here] = key.start_mark.line + 1
                walk(value, here)

    try:
        walk(yaml.compose(path.read_text()), ())
    except (OSError, yaml.YAMLError):
        pass
    return lines


def shown(key: str, value: Any) -> Any:
    """A value fit to print: references stay as written; anything under a secret-sounding key is hidden."""
    from ..config._logging import redact

    if isinstance(value, str) and value.startswith(REFERENCE_SCHEMES):
        return value
    return redact(value, key)


def flatten(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Leaves of nested mappings as (key path, value); lists and empty mappings are leaves."""
    if isinstance(value, dict) and value:
        rows = []
        for key, item in value.items():
            rows.extend(flatten(item, (*prefix, str(key))))
        return rows
    return [(prefix, value)]


def effective(app: App) -> dict[str, Any]:
    """The effective configuration, each value with where it came from."""
    cfg = app.config
    source = app.discovery.path
    lines = key_lines(source) if source is not None else {}
    rows = []
    for path, value in flatten(cfg.model_dump(mode="json")):
        key = ".".join(path)
        line = lines.get(path)
        origin = f"{source}:{line}" if line is not None else "default"
        rows.append({"key": key, "value": shown(path[-1] if path else "", value), "from": origin})
    return {
        "file": str(source) if source is not None else None,
        "found_by": app.discovery.origin,
        "looked_at": app.discovery.looked,
        "values": rows,
    }


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(app: App, as_json: bool) -> None:
    """Print the effective configuration: secrets as references, and where each value came from."""
    report = effective(app)
    if as_json:
        emit_json(report)
        return
    if report["file"]:
        click.echo(f"# configuration file: {report['file']} (found by {report['found_by']})")
    else:
        click.echo(f"# no configuration file; defaults only (looked at: {'; '.join(report['looked_at'])})")
    import json

    width = max((len(r["key"]) for r in report["values"]), default=0)
    for row in report["values"]:
        value = row["value"] if isinstance(row["value"], str) else json.dumps(row["value"])
        click.echo(f"{row['key']:<{width}} = {value}    # {row['from']}")


def check_connectors(app: App) -> list[dict[str, Any]]:
    """Build every enabled connector (validating its settings) and run its ``check()``."""
    from ..config._logging import redact
    from ..errors import ConfigError

    engine = app.engine(needs_connectors=True, read_only=True)
    results = []
    for name, cfg in sorted(app.config.connectors.items()):
        if not cfg.enabled:
            results.append({"connector": name, "type": cfg.type, "ok": True, "detail": "disabled", "missing": []})
            continue
        try:
            connector = engine.connector(name)
        except ConfigError:
            raise
        try:
            result = connector.check()
        except Exception as exc:  # one connector's failure is a finding, not a crash
            reason = redact(str(exc)) or type(exc).__name__
            results.append({"connector": name, "type": cfg.type, "ok": False, "detail": reason, "missing": []})
            continue
        results.append(
            {
                "connector": name,
                "type": cfg.type,
                "ok": bool(result.ok),
                "identity": result.identity,
                "missing": list(result.missing),
                "detail": redact(result.detail),
            }
        )
    return results


@config.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check(app: App, as_json: bool) -> None:
    """Validate the configuration and run every connector's check (credentials, permissions).

    \b
    Exit 0 all good, 3 a connector's check failed, 2 the configuration itself is wrong.
    """
    results = check_connectors(app)
    ok = all(r["ok"] for r in results)
    if as_json:
        emit_json({"file": str(app.discovery.path), "ok": ok, "connectors": results})
    else:
        click.echo(f"{app.discovery.path}: valid")
        for r in results:
            if r["ok"]:
                who = f" as {r['identity']}" if r.get("identity") else ""
                click.echo(
                    f"  ok      {r['connector']} ({r['type']}){who}" + (f": {r['detail']}" if r["detail"] else "")
                )
            else:
                missing = f"; missing permissions: {', '.join(r['missing'])}" if r["missing"] else ""
                click.echo(f"  FAILED  {r['connector']} ({r['type']}): {r['detail'] or 'check failed'}{missing}")
        failed = sum(not r["ok"] for r in results)
        click.echo(
            f"{len(results) - failed} of {len(results)} connector(s) ok" + (f", {failed} failed" if failed else "")
        )
    sys.exit(EXIT_OK if ok else EXIT_INCOMPLETE)
