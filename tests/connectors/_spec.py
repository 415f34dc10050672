"""Every request sent to the sandbox, checked against the vendor's machine-readable specification.

The simulators log every request they receive (method, path, query, body). At the end of each test
module under tests/connectors, the requests logged by the Google and GitHub simulators are checked
against:

- Google: the discovery documents shipped inside google-api-python-client
  (``googleapiclient/discovery_cache/documents/admin.directory_v1.json``, ``admin.datatransfer_v1.json``,
  ``gmail.v1.json``, ``licensing.v1.json``, ``vault.v1.json``):
  method and path, query parameters (the method's and the API's global ones) and request body fields;
- GitHub REST: ``@octokit/openapi`` ``generated/ghec.json`` (tests/connectors/data/ghec.json.gz):
  method and path, query parameters, request body (JSON Schema, and no field the schema does not name);
- GitHub GraphQL: ``@octokit/graphql-schema`` ``schema.graphql`` (tests/connectors/data/github-schema.graphql.gz):
  every query and mutation validated by graphql-core, with its variables;
- Okta: the operations of the official ``okta`` SDK (PyPI), generated from Okta's Management OpenAPI
  document: each ``_<operation>_serialize`` method's HTTP method, resource path and query parameters
  (the OpenAPI document itself is not shipped in any package installed here).
- Microsoft Graph v1.0: the request builders and models of the official ``msgraph-sdk`` (generated from
  Microsoft's OpenAPI description; see ``_graph_spec.py``): method and path, query parameters, body
  properties, nested objects, primitive kinds and enum values.

Not checked (no machine-readable source installed here): Slack, SCIM 2.0 (RFC 7644 has no
machine-readable request schema). The OAuth token endpoints and Google's multipart ``/batch``
envelope are transport, not API calls (the requests inside a batch are logged and checked one by one).
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from ._graph_spec import check_graph

DATA = Path(__file__).parent / "data"
_SKIP = {"google_workspace": ("/token", "/batch"), "github": ()}


# -- shared ---------------------------------------------------------------------------------------


def _template(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "$")


def _strict_fields(body: Any, schema: dict[str, Any], resolve: Any, where: str) -> list[str]:
    """Names in ``body`` that ``schema`` does not define (a misspelled field), recursively."""
    schema = resolve(schema)
    problems: list[str] = []
    if isinstance(body, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, value in body.items():
            if props is not None and key in props:
                problems += _strict_fields(value, props[key], resolve, f"{where}.{key}")
            elif isinstance(extra, dict):
                problems += _strict_fields(value, extra, resolve, f"{where}.{key}")
            elif props is not None and not extra:
                problems.append(f"{where}.{key}: no such field")
        for alternative in ("oneOf", "anyOf"):
            if alternative in schema and not props:
                results = [_strict_fields(body, s, resolve, where) for s in schema[alternative]]
                if all(results):
                    problems += results[0]
    elif isinstance(body, list) and "items" in schema:
        for n, item in enumerate(body):
            problems += _strict_fields(item, schema["items"], resolve, f"{where}[{n}]")
    return problems


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


# -- Google discovery documents ---------------------------------------------------------------------


@functools.cache
def _google() -> list[tuple[str, re.Pattern[str], dict[str, Any], dict[str, Any]]]:
    import googleapiclient

    root = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
    out = []
    for name in (
        "admin.directory_v1.json",
        "admin.datatransfer_v1.json",
        "gmail.v1.json",
        "licensing.v1.json",
        "vault.v1.json",
    ):
        doc = json.loads((root / name).read_text())

        def walk(resources: dict[str, Any], doc: dict[str, Any] = doc) -> None:
            for resource in resources.values():
                for method in (resource.get("methods") or {}).values():
                    path = "/" + doc["servicePath"] + method["path"]
                    out.append((method["httpMethod"], _template(path), method, doc))
                walk(resource.get("resources") or {})

        walk(doc["resources"])
    return out


def check_google(method: str, path: str, query: str, body: bytes) -> list[str]:
    """What the Admin SDK discovery documents do not allow in this request."""
    where = f"{method} {path}"
    found = [(m, doc) for verb, rx, m, doc in _google() if verb == method and rx.match(path)]
    found.sort(key=lambda t: t[0]["path"].count("{"))  # users before {+name}: the most literal path wins
    if not found:
        return [f"{where}: no such method in the Google discovery documents"]
    spec, doc = found[0]
    allowed = set(spec.get("parameters") or {}) | set(doc.get("parameters") or {})
    problems = [f"{where}: unknown query parameter {k!r}" for k, _ in parse_qsl(query) if k not in allowed]
    params = spec.get("parameters") or {}
    for name, p in params.items():
        if p.get("location") == "query" and p.get("required") and name not in dict(parse_qsl(query)):
            problems.append(f"{where}: missing required query parameter {name!r}")
    data = _json(body)
    if data is _NOT_JSON:
        return problems + [f"{where}: body is not JSON"]
    if data is not None and not spec.get("request"):
        if data:
            problems.append(f"{where}: this method takes no request body")
    elif data is not None:
        schemas = doc["schemas"]

        def resolve(s: dict[str, Any]) -> dict[str, Any]:
            while "$ref" in s:
                s = schemas[s["$ref"]]
            return s

        problems += _strict_fields(data, spec["request"], resolve, where + " body")
    return problems


# -- GitHub OpenAPI and GraphQL ---------------------------------------------------------------------


@functools.cache
def _openapi() -> dict[str, Any]:
    return json.loads(gzip.decompress((DATA / "ghec.json.gz").read_bytes()))


@functools.cache
def _github_paths() -> list[tuple[re.Pattern[str], str]]:
    # Literal segments before templated ones, so /orgs/{org}/members/{username}/copilot wins over wider ones.
    return sorted(((_template(p), p) for p in _openapi()["paths"]), key=lambda t: t[1].count("{"))


def _ref(node: dict[str, Any]) -> dict[str, Any]:
    spec = _openapi()
    while isinstance(node, dict) and "$ref" in node:
        _, _, kind, name = node["$ref"].split("/", 3)
        node = spec["components"][kind][name]
    return node


def check_github_rest(method: str, path: str, query: str, body: bytes) -> list[str]:
    """What GitHub's OpenAPI description (ghec.json) does not allow in this request."""
    where = f"{method} {path}"
    matches = [p for rx, p in _github_paths() if rx.match(path)]
    if not matches:
        return [f"{where}: no such path in GitHub's OpenAPI description"]
    item = _openapi()["paths"][matches[0]]
    op = item.get(method.lower())
    if op is None:
        return [f"{where}: {matches[0]} has no {method} in GitHub's OpenAPI description"]
    params = [_ref(p) for p in (item.get("parameters") or []) + (op.get("parameters") or [])]
    allowed = {p["name"] for p in params if p.get("in") == "query"}
    problems = [f"{where}: unknown query parameter {k!r}" for k, _ in parse_qsl(query) if k not in allowed]
    data = _json(body)
    if data is _NOT_JSON:
        return problems + [f"{where}: body is not JSON"]
    if data is None:
        if (op.get("requestBody") or {}).get("required"):
            problems.append(f"{where}: a request body is required")
        return problems
    content = (_ref(op.get("requestBody") or {}).get("content")) or {}
    media = content.get("application/json") or content.get("application/scim+json")
    if media is None:
        return problems + [f"{where}: this operation takes no JSON body"]
    from openapi_schema_validator import OAS30Validator

    schema = _inline(media["schema"])
    errors = list(OAS30Validator(schema).iter_errors(data))
    examples = [_ref(e).get("value") for e in (media.get("examples") or {}).values()]
    if errors and any(_shape(data) == _shape(e) for e in examples):
        # GitHub's own example contradicts its schema (EMU SCIM PATCH: "value": false where the schema
        # says string): a type a documented example of the same shape uses is allowed, nothing else.
        errors = [e for e in errors if e.validator != "type"]
    problems += [f"{where} body: {e.message}" for e in errors]
    problems += _strict_fields(data, schema, lambda s: s, where + " body")
    return problems


def _shape(value: Any) -> Any:
    """A JSON value with every scalar replaced by its type name (lists as the set of their items' shapes)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted({json.dumps(_shape(v), sort_keys=True) for v in value})
    return type(value).__name__


def _inline(node: Any, seen: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return {}
            return _inline(_ref(node), seen + (ref,))
        return {k: _inline(v, seen) for k, v in node.items() if k != "discriminator"}
    if isinstance(node, list):
        return [_inline(v, seen) for v in node]
    return node


@functools.cache
def _graphql_schema() -> Any:
    from graphql import build_schema

    # GitHub's published SDL defines two EnterpriseOwnerInfo fields twice (identically): skip the SDL self-check.
    sdl = gzip.decompress((DATA / "github-schema.graphql.gz").read_bytes()).decode()
    return build_schema(sdl, assume_valid_sdl=True)


def check_github_graphql(body: bytes) -> list[str]:
    """What GitHub's GraphQL schema does not allow in this document (fields, arguments, variables)."""
    from graphql import GraphQLError, parse, validate
    from graphql.execution.values import get_variable_values

    data = _json(body)
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        return ["POST /graphql: body is not {query, variables}"]
    try:
        document = parse(data["query"])
    except GraphQLError as exc:
        return [f"POST /graphql: {exc.message}"]
    schema = _graphql_schema()
    problems = [f"POST /graphql: {e.message}" for e in validate(schema, document)]
    if not problems:
        for definition in document.definitions:
            variables = getattr(definition, "variable_definitions", None) or []
            coerced = get_variable_values(schema, variables, data.get("variables") or {})
            if isinstance(coerced, list):
                problems += [f"POST /graphql variables: {e.message}" for e in coerced]
    return problems


def check_github(method: str, path: str, query: str, body: bytes) -> list[str]:
    if path == "/graphql":
        return check_github_graphql(body) if method == "POST" else [f"{method} /graphql: GraphQL takes POST"]
    return check_github_rest(method, path, query, body)


# -- Okta: operations of the okta SDK, generated from the Management OpenAPI document ----------------

_SERIALIZE = re.compile(r"def _(\w+)_serialize\(.*?(?=\n    (?:async )?def |\n    @)", re.S)
_OKTA_METHOD = re.compile(r'method="([A-Z]+)",\s*resource_path="([^"]+)"')
_OKTA_QUERY = re.compile(r'_query_params\.append\(\("([^"]+)"')


@functools.cache
def _okta() -> list[tuple[str, re.Pattern[str], str, frozenset[str]]]:
    import okta

    out = []
    for source in sorted((Path(okta.__file__).parent / "api").glob("*_api.py")):
        text = source.read_text() + "\n    def "
        for block in _SERIALIZE.finditer(text):
            found = _OKTA_METHOD.search(block.group(0))
            if found:
                method, path = found.groups()
                query = frozenset(_OKTA_QUERY.findall(block.group(0)))
                out.append((method, _template(path), block.group(1), query))
    # literal paths before templated ones: /api/v1/users/me is not /api/v1/users/{id}
    return sorted(out, key=lambda t: t[1].pattern.count("[^/]+"))


def check_okta(method: str, path: str, query: str, body: bytes) -> list[str]:
    """What the okta SDK's operations (Okta's Management OpenAPI document) do not allow in this request."""
    where = f"{method} {path}"
    found = [(op, q) for verb, rx, op, q in _okta() if verb == method and rx.match(path)]
    if not found:
        return [f"{where}: no such operation in Okta's Management API (okta SDK)"]
    operation, allowed = found[0]
    return [f"{where} ({operation}): unknown query parameter {k!r}" for k, _ in parse_qsl(query) if k not in allowed]


CHECKS = {"google_workspace": check_google, "github": check_github, "okta": check_okta, "entra": check_graph}


def record(sim: Any) -> list[Any]:
    """Every request ``sim`` receives from now on, in a list of its own (``sim.log.clear()`` leaves it)."""
    sent: list[Any] = []
    add = sim.log.add

    def both(entry: Any) -> None:
        sent.append(entry)
        add(entry)

    sim.log.add = both
    return sent


def violations(system: str, entries: Any) -> list[str]:
    """The spec violations among a simulator's logged requests (none for systems without a spec here)."""
    check = CHECKS.get(system)
    if check is None:
        return []
    found: list[str] = []
    for entry in entries:
        if entry.path in _SKIP.get(system, ()) or entry.method in ("HEAD", "OPTIONS"):
            continue
        for problem in check(entry.method, entry.path, entry.query, entry.body):
            if problem not in found:
                found.append(problem)
    return found
