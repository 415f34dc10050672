"""docs/writing-plugins.md cannot drift: every hook in hookspecs.py is documented with its exact signature,
and the examples run."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import inspect
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import pluggy
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from offboard import CaseClosed, HREvent, Notice, Person, hookspecs, plugins
from offboard.audit._note import Verifier
from offboard.checklist._notifiers import notify
from offboard.config._config import load_config
from offboard.hr import WebhookRejected

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing-plugins.md"
HEADING = re.compile(r"^(#{1,6}) (.+?)[ \t]*$", re.MULTILINE)
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    """The hooks offboard calls, by name."""
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "offboard_spec")  # set by HookspecMarker("offboard")
    }


def sections(doc: str) -> dict[str, str]:
    """Each heading's text (without the #s) -> the text up to the next heading; code blocks hold no headings."""
    fences = [m.span() for m in BLOCK.finditer(doc)]
    marks = [m for m in HEADING.finditer(doc) if not any(a <= m.start() < b for a, b in fences)]
    ends = [m.start() for m in marks[1:]] + [len(doc)]
    return {m.group(2): doc[m.end() : end] for m, end in zip(marks, ends, strict=True)}


def code_blocks(text: str, language: str | None = None) -> list[str]:
    return [body for lang, body in BLOCK.findall(text) if language is None or lang == language]


def hook_doc_problems(doc: str, specs: dict[str, Callable[..., Any]] | None = None) -> list[str]:
    """What the doc lacks: a '### `hook`' heading per hook with ``def hook(<exact parameters>):`` and the hook's
    docstring in a code block under it; and headings of that form for hooks that do not exist."""
    specs = hookspec_functions() if specs is None else specs
    found = sections(doc)
    problems = []
    for name, fn in sorted(specs.items()):
        body = found.get(f"`{name}`")
        if body is None:
            problems.append(f"{name}: no '### `{name}`' heading")
            continue
        signature = f"def {name}{inspect.signature(fn)}:"
        blocks = [block.splitlines() for block in code_blocks(body, "python")]
        if not any(signature in lines for lines in blocks):
            problems.append(f"{name}: no python code block under its heading with {signature!r}")
        elif not any(f'    """{fn.__doc__}"""' in lines for lines in blocks):
            problems.append(f"{name}: the code block under its heading lacks the docstring of hookspecs.py")
    for heading in found:
        match = re.fullmatch(r"`(\w+)`", heading)
        if match and match.group(1) not in specs:
            problems.append(f"{match.group(1)}: documented, but hookspecs.py has no such hook")
    return problems


def examples(doc: str) -> dict[str, str]:
    """The example modules: python blocks whose first line is ``# <file>.py``."""
    out = {}
    for block in code_blocks(doc, "python"):
        match = re.fullmatch(r"# (\w+\.py)", block.splitlines()[0])
        if match:
            out[match.group(1)] = block
    return out


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


# -- the hooks and their signatures ------------------------------------------------------------


def test_every_hook_is_documented_with_its_exact_signature(doc):
    assert hook_doc_problems(doc) == []
    assert len(hookspec_functions()) == 7


def test_the_check_fails_for_a_hook_left_out(doc):
    found = sections(doc)
    without = doc.replace("### `register_notifiers`" + found["`register_notifiers`"], "")
    assert without != doc
    assert hook_doc_problems(without) == ["register_notifiers: no '### `register_notifiers`' heading"]


def test_the_check_fails_for_a_wrong_signature_or_docstring_and_an_unknown_hook(doc):
    changed = doc.replace("def case_closed(case):", "def case_closed(engine, case, summary):")
    assert changed != doc
    assert hook_doc_problems(changed) == [
        "case_closed: no python code block under its heading with 'def case_closed(case):'"
    ]

    drifted = doc.replace(hookspecs.register_commands.__doc__, "Add commands.")
    assert hook_doc_problems(drifted) == [
        "register_commands: the code block under its heading lacks the docstring of hookspecs.py"
    ]

    def new_hook(person, when):
        """A hook added to hookspecs.py but not to the doc."""

    specs = {**hookspec_functions(), "new_hook": new_hook}
    assert hook_doc_problems(doc, specs) == ["new_hook: no '### `new_hook`' heading"]
    extra = doc + "\n### `retired_hook`\n\n```python\ndef retired_hook(x):\n```\n"
    assert hook_doc_problems(extra) == ["retired_hook: documented, but hookspecs.py has no such hook"]


# -- the examples ---------------------------------------------------------------------------


def test_every_python_block_compiles(doc):
    blocks = code_blocks(doc, "python")
    assert len(blocks) >= 13
    for number, block in enumerate(blocks, start=1):
        compile(block, f"writing-plugins.md block {number}", "exec")


def test_there_is_an_example_per_plugin_type(doc):
    found = examples(doc)
    assert set(found) == {
        "acme_people.py",
        "chat_webhook.py",
        "acme_webhooks.py",
        "vault_signer.py",
        "acme_cli.py",
        "manager_heads_up.py",
    }
    hooks = {name for text in found.values() for name in re.findall(r"@hookimpl\ndef (\w+)\(", text)}
    assert hooks == set(hookspec_functions()) - {"register_connectors"}  # that one has writing-connectors.md


@pytest.fixture
def plugin_dir(doc, tmp_path, monkeypatch) -> Iterator[Path]:
    """The examples as files, importable by name; the process plugin manager forgotten afterwards."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    for name, text in examples(doc).items():
        (folder / name).write_text(text)
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    plugins.reset()
    yield folder
    plugins.reset()
    for name in set(sys.modules) - before:
        if name.startswith("offboard_plugin_") or (folder / f"{name}.py").exists():
            del sys.modules[name]


def fresh_pm(*modules: Any) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("offboard")
    pm.add_hookspecs(hookspecs)
    for module in modules:
        pm.register(module)
    pm.check_pending()
    return pm


class Recorder:
    """A local HTTP server that records JSON posts and answers from ``routes`` (path -> (status, body))."""

    def __init__(self, routes: dict[str, tuple[int, Any]] | None = None):
        self.routes = routes or {}
        self.posts: list[tuple[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: Any) -> None:
                status, answer = recorder.routes.get(self.path, (200, {"ok": True}))
                if callable(answer):
                    answer = answer(body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._answer(None)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                recorder.posts.append((self.path, body))
                self._answer(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.close()


def test_the_people_source_example_loads_from_the_config_and_reads_people(plugin_dir, tmp_path):
    from offboard.inventory._people import configured_sources

    (tmp_path / "acme.jsonl").write_text(
        json.dumps(
            {
                "work_email": "cara@corp.example",
                "worker_id": "C7",
                "worker_type": "Intern",
                "manager_email": "boss@corp.example",
                "last_day": "2030-03-31",
                "time_zone": "Asia/Tokyo",
            }
        )
        + "\n\n"
        + json.dumps({"work_email": "boss@corp.example", "worker_type": "employee"})
        + "\n"
    )
    config_file = tmp_path / "offboard.yaml"
    config_file.write_text(
        f"plugins: [{plugin_dir / 'acme_people.py'}]\n"
        "people:\n  - type: acme_export\n    settings: {path: acme.jsonl}\n"
    )
    config = load_config(config_file)
    assert "acme_export" in plugins.registered("register_people_sources")
    [(label, source)] = configured_sources(config)
    cara, boss = source.people()
    assert (cara.type, cara.manager, cara.employee_id, cara.timezone) == (
        "contractor",
        "boss@corp.example",
        "C7",
        "Asia/Tokyo",
    )
    assert cara.end_date.isoformat() == "2030-03-31T23:59:59+09:00"
    assert (boss.type, boss.end_date) == ("employee", None)
    assert source.find("C7") == cara


def test_the_notifier_example_delivers_and_reports_failures(plugin_dir, tmp_path, recorder, monkeypatch):
    monkeypatch.setenv("IT_ROOM_WEBHOOK", recorder.url + "/hooks/it")
    config_file = tmp_path / "offboard.yaml"
    config_file.write_text(
        f"plugins: [{plugin_dir / 'chat_webhook.py'}]\n"
        "notifiers:\n  it-room:\n    type: chat_webhook\n"
        "    settings: {url: env:IT_ROOM_WEBHOOK}\n    events: [case_closed]\n"
    )
    config = load_config(config_file)
    reached = notify(config, "case_closed", Notice("case_closed", "Case c-1 complete", "All verified."))
    assert reached == ["it-room:it"]
    assert recorder.posts == [("/hooks/it", {"text": "**Case c-1 complete**\nAll verified."})]
    recorder.routes["/hooks/it"] = (500, {"error": "down"})
    assert notify(config, "case_closed", Notice("case_closed", "s", "t")) == []  # logged, never raised


def test_the_case_closed_example_tells_the_manager_through_the_notifiers(plugin_dir, tmp_path, recorder, monkeypatch):
    monkeypatch.setenv("IT_ROOM_WEBHOOK", recorder.url + "/hooks/it")
    config_file = tmp_path / "offboard.yaml"
    config_file.write_text(
        f"plugins: [{plugin_dir / 'chat_webhook.py'}, {plugin_dir / 'manager_heads_up.py'}]\n"
        "notifiers:\n  it-room:\n    type: chat_webhook\n    settings: {url: env:IT_ROOM_WEBHOOK}\n"
    )
    config = load_config(config_file)
    person = Person("cara@corp.example", email="cara@corp.example", name="Cara", manager="boss@corp.example")
    for status, summary in (("complete", ()), ("incomplete", ("slack cara: failed (boom)",))):
        plugins.get_plugin_manager().hook.case_closed(
            case=CaseClosed(
                id=f"case-{status}",
                person=person,
                status=status,
                trigger="webhook",
                policy="default",
                summary=summary,
                notify=lambda notice: notify(config, "case_closed", notice),
            )
        )
    texts = [body["text"] for _, body in recorder.posts]
    assert len(texts) == 3  # the bundled IT summary of each case, and one heads-up
    [heads_up] = [t for t in texts if "For: boss@corp.example" in t]
    assert "Access of Cara" in heads_up and "- slack cara: failed (boom)" in heads_up and "case-incomplete" in heads_up


def test_the_hr_webhook_example_verifies_and_parses(plugin_dir, monkeypatch):
    monkeypatch.setenv("ACME_WEBHOOK_SECRET", "s3cret-for-acme")
    pm = fresh_pm(importlib.import_module("acme_webhooks"), importlib.import_module("offboard.intake._hr_adapters"))
    body = json.dumps({"id": 42, "event": "worker.terminated", "email": "cara@corp.example", "last_day": "2030-03-31"})
    sign = hmac.new(b"s3cret-for-acme", body.encode(), hashlib.sha256).hexdigest()
    settings = {"secret": "env:ACME_WEBHOOK_SECRET", "now": datetime.now(UTC)}

    def parse(source: str, signature: str, data: str = body) -> Any:
        return pm.hook.parse_webhook(
            source=source, headers={"x-acme-signature": signature}, body=data.encode(), settings=settings
        )

    assert parse("acme", sign) == [
        HREvent("acme", "42", "termination", "cara@corp.example", "2030-03-31", reason="Acme HR")
    ]
    with pytest.raises(WebhookRejected) as refused:
        parse("acme", "0" * 64)
    assert (refused.value.status, refused.value.code) == (401, "bad_signature")
    ping = json.dumps({"event": "ping"})
    assert parse("acme", hmac.new(b"s3cret-for-acme", ping.encode(), hashlib.sha256).hexdigest(), ping) == []
    assert parse("workday", sign) is None  # not its source, nor a bundled one


def test_the_signer_example_signs_with_the_vault_transit_key(plugin_dir, tmp_path, monkeypatch):
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(body: dict[str, str]) -> dict[str, Any]:
        signature = key.sign(base64.b64decode(body["input"]))
        return {"data": {"signature": "vault:v2:" + base64.b64encode(signature).decode()}}

    vault = Recorder(
        {
            "/v1/transit/keys/offboard-audit": (
                200,
                {
                    "data": {
                        "keys": {"1": {"public_key": "old"}, "2": {"public_key": base64.b64encode(public).decode()}}
                    }
                },
            ),
            "/v1/transit/sign/offboard-audit": (200, sign),
        }
    )
    try:
        module = importlib.import_module("vault_signer")
        pm = fresh_pm(module)
        monkeypatch.delenv("VAULT_ADDR", raising=False)
        assert pm.hook.checkpoint_signer(config=None, data_dir=tmp_path) is None
        monkeypatch.setenv("VAULT_ADDR", vault.url)
        monkeypatch.setenv("VAULT_TOKEN", "hvs.test")
        monkeypatch.setenv("OFFBOARD_AUDIT_ORIGIN", "corp.example/offboard/audit/v1")
        signer = pm.hook.checkpoint_signer(config=None, data_dir=tmp_path)
        verifier = Verifier.parse(signer.vkey)
        assert verifier.name == "corp.example/offboard/audit/v1"
        assert verifier.verify(b"checkpoint text\n", signer.sign(b"checkpoint text\n"))
    finally:
        vault.close()


def test_the_command_example_adds_a_group(plugin_dir, tmp_path):
    pm = fresh_pm(importlib.import_module("acme_cli"))
    cli = click.Group("offboard")
    pm.hook.register_commands(cli=cli)
    export = tmp_path / "acme.jsonl"
    export.write_text(
        '{"work_email": "a@corp.example", "worker_type": "contractor"}\n{"work_email": "b@corp.example"}\n'
    )
    result = CliRunner().invoke(cli, ["acme", "check-export", str(export)])
    assert result.exit_code == 0, result.output
    assert result.output == "2 people, 1 contractors\n"
    export.write_text('{"work_email": "a@corp.example", "last_day": "soon"}\n')
    result = CliRunner().invoke(cli, ["acme", "check-export", str(export)])
    assert result.exit_code == 1 and "line 1: end date 'soon' is not an ISO date" in result.output
