"""Small SCIM helpers for the vendor SCIM endpoints (Slack, GitHub EMU): filters and PATCH of ``active``."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._app import HTTPError

__all__ = ["compile_filter", "patch_operations", "value_at"]

_TERM = re.compile(
    r'^\s*([\w.:\[\] "]+?)\s+(eq|ne|co|sw|ew|pr)(?:\s+("(?:[^"\\]|\\.)*"|true|false|null|[\d.]+))?\s*$', re.I
)


def value_at(resource: dict[str, Any], attr: str) -> list[Any]:
    """Every value at a dotted attribute path (case-insensitive), flattening multi-valued attributes."""
    current: list[Any] = [resource]
    for part in attr.split("."):
        nxt: list[Any] = []
        for node in current:
            if isinstance(node, list):
                node_items = node
            else:
                node_items = [node]
            for item in node_items:
                if isinstance(item, dict):
                    key = next((k for k in item if k.lower() == part.lower()), None)
                    if key is not None:
                        nxt.append(item[key])
        current = nxt
    out: list[Any] = []
    for v in current:
        if isinstance(v, list):
            out.extend(x.get("value") if isinstance(x, dict) else x for x in v)
        else:
            out.append(v)
    return out


def compile_filter(expr: str, aliases: dict[str, str] | None = None) -> Callable[[dict[str, Any]], bool]:
    """Compile ``attr op "value"`` terms joined by ``and``/``or`` (RFC 7644 §3.4.2.2 subset)."""
    aliases = {k.lower(): v for k, v in (aliases or {}).items()}
    for joiner, combine in ((r"\s+or\s+", any), (r"\s+and\s+", all)):
        parts = re.split(joiner, expr, flags=re.I)
        if len(parts) > 1:
            preds = [compile_filter(p, aliases) for p in parts]
            return lambda r: combine(p(r) for p in preds)
    m = _TERM.match(expr)
    if not m:
        raise HTTPError(400, f"Invalid filter: {expr!r}", reason="invalidFilter")
    attr, op, raw = m.group(1).strip(), m.group(2).lower(), m.group(3)
    attr = aliases.get(attr.lower(), attr)
    sub = re.match(r'^(\w+)\[(\w+) eq "([^"]*)"\]\.?(\w*)$', attr)
    if op != "pr" and raw is None:
        raise HTTPError(400, f"Invalid filter: {expr!r}", reason="invalidFilter")
    want: Any = None
    if raw is not None:
        want = (
            raw[1:-1].replace('\\"', '"')
            if raw.startswith('"')
            else {"true": True, "false": False, "null": None}.get(raw.lower(), raw)
        )
    if isinstance(want, str):
        want_l = want.lower()

    def values(r: dict[str, Any]) -> list[Any]:
        if sub:
            base, key, val, leaf = sub.groups()
            items: list[Any] = next((v for k, v in r.items() if k.lower() == base.lower()), []) or []
            return [
                i.get(leaf or "value")
                for i in items
                if isinstance(i, dict) and str(i.get(key, "")).lower() == val.lower()
            ]
        return value_at(r, attr)

    def test(v: Any) -> bool:
        if op == "pr":
            return v not in (None, "", [])
        if isinstance(want, str) and isinstance(v, str):
            v_l = v.lower()
            return {
                "eq": v_l == want_l,
                "ne": v_l != want_l,
                "co": want_l in v_l,
                "sw": v_l.startswith(want_l),
                "ew": v_l.endswith(want_l),
            }[op]
        return (v == want) if op == "eq" else (v != want) if op == "ne" else False

    return lambda r: any(test(v) for v in values(r)) or (op == "ne" and not values(r))


def patch_operations(body: Any, v1: bool = False) -> dict[str, Any]:
    """The attribute changes a SCIM PATCH asks for, accepting the common variants (path-less, "Replace", "False")."""
    if not isinstance(body, dict):
        raise HTTPError(400, "The request body must be a JSON object.", reason="invalidSyntax")
    if v1 or "Operations" not in body:
        return {k: v for k, v in body.items() if k != "schemas"}
    changes: dict[str, Any] = {}
    for op in body.get("Operations") or ():
        kind = str(op.get("op", "")).lower()
        if kind not in ("add", "replace", "remove"):
            raise HTTPError(400, f"Unsupported PATCH op {op.get('op')!r}", reason="invalidSyntax")
        path, value = op.get("path"), op.get("value")
        if kind == "remove":
            changes.setdefault("_remove", []).append(path)
            continue
        if path:
            changes[path] = value
        elif isinstance(value, dict):
            changes.update(value)
        else:
            raise HTTPError(400, "PATCH operation without path needs an object value", reason="noTarget")
    if "active" in changes and isinstance(changes["active"], str):
        changes["active"] = changes["active"].lower() == "true"
    return changes
