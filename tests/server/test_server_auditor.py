"""The read-only auditor pages under /audit/: the token, GET only, the same numbers as the log, nothing changed."""

from __future__ import annotations

import io
import json
import secrets
import threading
import zipfile
from hashlib import sha256

import pytest

from offboard.audit import load_trust, verify_evidence
from offboard.errors import ConfigError
from offboard.web._app import create_app

from ._auditor import TOKEN_ENV, bearer, start_auditor
from ._support import Clock, configure, new_secret, open_engine, stop


@pytest.fixture
def auditor(make_company, monkeypatch, clock):
    """An app with an auditor token and three closed cases (one incomplete); yields (server, token)."""
    srv, token = start_auditor(make_company, monkeypatch, clock)
    yield srv, token
    stop(srv)


def snapshot(server) -> tuple[str, list]:
    """The audit entries (a digest) and the stored cases: what a page must never change."""
    entries = (server.engine.data_dir / "audit" / "entries.jsonl").read_bytes()
    return sha256(entries).hexdigest(), server.cases()


PAGES = [
    "/audit/",
    "/audit",
    "/audit/report.csv",
    "/audit/people/user0@corp.example",
    "/audit/people/user0@corp.example/evidence.zip",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_refuses_without_the_token(auditor, path):
    server, token = auditor
    for headers in (
        {},
        bearer("wrong-" + token),
        {"Authorization": token},
        {"Authorization": f"Basic {token}"},
        bearer(""),
    ):
        response = server.client.get(path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["error"] == "unauthorized" and response.headers["www-authenticate"].startswith("Bearer")
        assert token not in response.text
    assert server.client.get(path, headers=bearer(token)).status_code == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
@pytest.mark.parametrize("path", PAGES + ["/audit/anything/else"])
def test_no_method_but_get_is_answered(auditor, method, path):
    server, token = auditor
    before = snapshot(server)
    for headers in ({}, bearer(token)):
        response = server.client.request(method, path, headers=headers, content=b'{"status": "complete"}')
        assert response.status_code == 405, response.text
        assert response.json()["error"] == "method_not_allowed" and response.headers["allow"] == "GET, HEAD"
    assert snapshot(server) == before


def test_head_is_allowed_and_pages_change_nothing(auditor):
    server, token = auditor
    before = snapshot(server)
    assert server.client.head("/audit/", headers=bearer(token)).status_code == 200
    for path in PAGES:
        assert server.client.get(path, headers=bearer(token)).status_code == 200
    assert snapshot(server) == before


def test_without_a_period_the_last_30_days_are_shown(auditor):
    server, token = auditor
    html = server.client.get("/audit/", headers=bearer(token)).text
    today = server.clock().date()
    start = today.fromordinal(today.toordinal() - 29)
    assert f'name="from" value="{start}"' in html and f'name="to" value="{today}"' in html
    assert '<th scope="row">Cases</th><td class="num">3</td>' in html


def test_without_a_configured_token_the_pages_are_off(server):
    for path in PAGES:
        response = server.client.get(path, headers=bearer("anything-at-all-long-enough"))
        assert response.status_code == 404 and response.json()["error"] == "auditor_pages_off"
        assert "server.auditor_token" in response.json()["message"]


def test_the_report_page_shows_the_log_s_numbers(auditor):
    server, token = auditor
    today = server.clock().date()
    response = server.client.get(f"/audit/?from={today}&to={today}&sla=4h", headers=bearer(token))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert (
        response.headers["cache-control"] == "no-store"
        and "default-src 'none'" in response.headers["content-security-policy"]
    )
    html = response.text
    statuses = [c["status"] for c in server.cases()]
    assert sorted(statuses) == ["complete", "complete", "incomplete"]
    assert '<th scope="row">Cases</th><td class="num">3</td>' in html
    assert '<th scope="row">Incomplete</th><td class="num">1</td>' in html
    assert 'href="/audit/people/user2%40corp.example?sla=4h"' in html
    assert f'href="/audit/report.csv?from={today}&amp;to={today}&amp;sla=4h"' in html
    assert '<form class="period" method="get" action="/audit/"' in html and token not in html
    rows = server.client.get(f"/audit/report.csv?from={today}&to={today}", headers=bearer(token))
    assert rows.headers["content-type"].startswith("text/csv") and "attachment" in rows.headers["content-disposition"]
    lines = rows.text.splitlines()
    assert len(lines) == 1 + 3 * 2 * 3  # a row per planned action: 3 people x 2 systems x 3 actions
    assert (
        sum(
            ",user2,revoke_sessions,failed," in line
            or ",user2,disable_account,failed," in line
            or ",user2,remove_memberships,failed," in line
            for line in lines
        )
        == 3
    )


def test_a_case_closed_after_the_last_checkpoint_is_announced_until_sealed(auditor):
    """The pages read the log as of its newest checkpoint: newer entries are announced, then shown once sealed."""
    server, token = auditor
    engine = server.engine
    gate, original = threading.Event(), engine.record.audit.checkpoint

    def held_checkpoint():  # the background sealer waits until the test lets it go
        if threading.current_thread().name.startswith("offboard-seal"):
            assert gate.wait(30), "the test never released the seal"
        return original()

    engine.record.audit.checkpoint = held_checkpoint
    try:
        engine.revoke("user3@corp.example")  # closes the case; its seal is queued behind the gate
        sealed = engine.record.audit._latest.size
        unsealed = len((engine.data_dir / "audit" / "entries.jsonl").read_bytes().splitlines()) - sealed
        assert unsealed > 0
        for path in ("/audit/", "/audit/people/user0@corp.example"):
            html = server.client.get(path, headers=bearer(token)).text
            assert (
                f"{unsealed} entries after checkpoint size {sealed} are not yet sealed; they appear once sealed."
                in html
            )
        assert (
            '<th scope="row">Cases</th><td class="num">3</td>'
            in server.client.get("/audit/", headers=bearer(token)).text
        )
    finally:
        gate.set()
    engine.wait_sealed()
    html = server.client.get("/audit/", headers=bearer(token)).text
    assert '<th scope="row">Cases</th><td class="num">4</td>' in html and "not yet sealed" not in html


def test_the_person_page_and_the_evidence_bundle(auditor):
    server, token = auditor
    page = server.client.get("/audit/people/user2@corp.example", headers=bearer(token))
    assert page.status_code == 200
    assert "Log entries" in page.text and 'href="/audit/people/user2%40corp.example/evidence.zip?sla=24h"' in page.text
    assert "credentials rejected" in page.text and "incomplete" in page.text
    download = server.client.get("/audit/people/user2%40corp.example/evidence.zip", headers=bearer(token))
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert download.headers["content-disposition"] == 'attachment; filename="evidence-user2_corp.example.zip"'
    bundle = server.company.root / "bundle.zip"
    bundle.write_bytes(download.content)
    checked = verify_evidence(bundle, load_trust(server.engine.data_dir / "audit" / "trusted-keys.txt"))
    assert checked.problems == [] and checked.person == "user2@corp.example"
    assert (
        json.loads(zipfile.ZipFile(io.BytesIO(download.content)).read("summary.json"))["cases"][0]["status"]
        == "incomplete"
    )


@pytest.mark.parametrize(
    "query, words",
    [
        ("?from=2026-13-01&to=2026-01-31", "from '2026-13-01' is not a date"),
        ("?from=2026-02-01&to=2026-01-31", "from 2026-02-01 is after to 2026-01-31"),
        ("?from=2026-02-01", "give both from and to"),
        ("?sla=soon", "sla: 'soon' is not a duration"),
    ],
)
def test_bad_periods_are_refused_with_the_reason(auditor, query, words):
    server, token = auditor
    response = server.client.get(f"/audit/{query}", headers=bearer(token))
    assert response.status_code == 400 and words in response.json()["message"]
    page = server.client.get(f"/audit/{query}", headers={**bearer(token), "Accept": "text/html"})
    assert (
        page.status_code == 400
        and page.headers["content-type"].startswith("text/html")
        and words.replace("'", "&#x27;") in page.text
    )


def test_an_unknown_person_is_404(auditor):
    server, token = auditor
    for path in ("/audit/people/nobody@corp.example", "/audit/people/nobody@corp.example/evidence.zip"):
        response = server.client.get(path, headers=bearer(token))
        assert (
            response.status_code == 404
            and "no case in the audit log for person 'nobody@corp.example'" in response.json()["message"]
        )


def test_a_tampered_log_is_an_error_that_says_where(auditor):
    server, token = auditor
    path = server.engine.data_dir / "audit" / "entries.jsonl"
    lines = path.read_bytes().splitlines()
    lines[1] = lines[1].replace(b'"result":"verified"', b'"result":"failed"', 1)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    for url in ("/audit/", "/audit/people/user0@corp.example"):
        response = server.client.get(url, headers=bearer(token))
        assert response.status_code == 500 and response.json()["error"] == "log_does_not_verify"
        assert "checkpoints/" in response.json()["message"] and "root hash does not match" in response.json()["message"]


@pytest.fixture
def debug_logs(capsys):
    """Call it to log at debug level into capsys (during the test: capsys's streams change between phases);
    the logging set-up is put back afterwards."""
    import logging

    import structlog

    from offboard.config._logging import configure_logging

    saved, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def start():
        root.handlers[:] = []
        configure_logging(2, json=True)
        return capsys

    yield start
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_token_never_appears_in_answers_or_logs(auditor, debug_logs):
    server, token = auditor
    capsys = debug_logs()
    answers = []
    for path in PAGES + ["/audit/?from=x&to=y", "/openapi.json"]:
        server.clock.advance(minutes=1)  # two wrong tokens a page: stay under the lockout of wrong tokens
        answers += [
            server.client.get(path, headers=headers).text
            for headers in ({}, bearer(token), bearer(token[:-1]), {**bearer(token), "Accept": "text/html"})
        ]
    answers += [server.client.post("/audit/", headers=bearer(token)).text]
    captured = capsys.readouterr()
    refusals = [json.loads(line) for line in captured.err.splitlines() if "auditor page refused" in line]
    assert {r["reason"] for r in refusals} == {"no bearer token", "wrong bearer token"}  # the logs were captured
    for text in [*answers, captured.out, captured.err]:
        assert token not in text and token[:-1] not in text


def _config_error(company, monkeypatch, value: str | None, ref: str) -> str:
    secret = new_secret()
    if value is not None:
        monkeypatch.setenv(TOKEN_ENV, value)
    configure(company, secret, monkeypatch, server={"auditor_token": ref})
    engine = open_engine(company, Clock())
    try:
        with pytest.raises(ConfigError) as info:
            create_app(engine)
    finally:
        engine.close()
    return str(info.value)


def test_the_token_is_a_reference_long_enough_and_not_the_webhook_secret(make_company, monkeypatch):
    company = make_company(systems=1)
    inline = secrets.token_hex(20)
    message = _config_error(company, monkeypatch, None, inline)
    assert "server.auditor_token" in message and "env:NAME or file:PATH" in message and inline not in message
    message = _config_error(company, monkeypatch, "short", f"env:{TOKEN_ENV}")
    assert "too short (5 characters" in message and "short" not in message.replace("too short", "")
    assert "OFFBOARD_UNSET_AUDITOR" in _config_error(company, monkeypatch, None, "env:OFFBOARD_UNSET_AUDITOR")
    secret = new_secret()
    monkeypatch.setenv("OFFBOARD_TEST_WEBHOOK_SECRET_SAME", secret)
    company.extra = {
        "server": {
            "webhook_secret": "env:OFFBOARD_TEST_WEBHOOK_SECRET_SAME",
            "auditor_token": "env:OFFBOARD_TEST_WEBHOOK_SECRET_SAME",
        }
    }
    company.write_config()
    engine = open_engine(company, Clock())
    try:
        with pytest.raises(ConfigError) as info:
            create_app(engine)
    finally:
        engine.close()
    assert "must not be the webhook secret" in str(info.value) and secret not in str(info.value)


def test_the_pages_are_documented_in_openapi(auditor):
    server, _ = auditor
    paths = server.client.get("/openapi.json").json()["paths"]
    assert set(paths["/audit/"]) == {"get"} and "401" in paths["/audit/"]["get"]["responses"]
    assert "/audit/people/{person}/evidence.zip" in paths and "post" not in paths["/audit/people/{person}"]


def test_the_pages_verify_with_a_pinned_trust_list_when_one_is_configured(make_company, monkeypatch, clock, tmp_path):
    import shutil

    from offboard.audit import AuditLog, FileSigner

    server, token = start_auditor(make_company, monkeypatch, clock)
    company = server.company
    audit_dir = server.engine.data_dir / "audit"
    stop(server)
    pinned = tmp_path / "pinned-keys.txt"
    shutil.copy(audit_dir / "trusted-keys.txt", pinned)
    with AuditLog.open(
        tmp_path / "other",
        "other.example/log",
        signer=FileSigner(tmp_path / "other" / "signing.key", "other.example/log"),
    ):
        pass  # a log of someone else: its key does not sign ours
    stranger = tmp_path / "other" / "trusted-keys.txt"

    def pages_with(keys) -> tuple:
        configure(
            company,
            new_secret(),
            monkeypatch,
            server={"auditor_token": f"env:{TOKEN_ENV}", "auditor_trusted_keys": str(keys)},
        )
        engine = open_engine(company, clock)
        app = create_app(engine)
        from fastapi.testclient import TestClient

        try:
            with TestClient(app) as client:
                report = client.get("/audit/?from=2000-01-01&to=2100-01-01", headers=bearer(token))
                bundle = client.get("/audit/people/user0@corp.example/evidence.zip", headers=bearer(token))
            return report, bundle
        finally:
            engine.close()

    report, bundle = pages_with(pinned)
    assert report.status_code == 200 and "(pinned: server.auditor_trusted_keys)" in report.text
    assert bundle.status_code == 200
    report, bundle = pages_with(stranger)
    assert report.status_code == 500 and report.json()["error"] == "log_does_not_verify"
    assert bundle.status_code == 500
    with pytest.raises(ConfigError) as info:
        pages_with(tmp_path / "missing.txt")
    assert "server.auditor_trusted_keys" in str(info.value) and "missing.txt" in str(info.value)


@pytest.mark.parametrize(
    "method, path, headers, status, code",
    [
        ("GET", "/audit/", {}, 401, "unauthorized"),
        ("HEAD", "/audit/report.csv", {}, 401, "unauthorized"),
        ("GET", "/audit/?from=2026-02-30&to=2026-03-01", "token", 400, "bad_request"),
        ("GET", "/audit/?from=2026-01-01", "token", 400, "bad_request"),
        ("GET", "/audit/people/user0@corp.example?sla=soon", "token", 400, "bad_request"),
        ("GET", "/audit/people/nobody@corp.example", "token", 404, "not_found"),
        ("GET", "/audit/people/nobody@corp.example/evidence.zip", "token", 404, "not_found"),
        ("DELETE", "/audit/people/user0@corp.example", "token", 405, "method_not_allowed"),
    ],
)
def test_refusals_are_json_or_a_page_for_a_browser_with_the_same_headers(auditor, method, path, headers, status, code):
    server, token = auditor
    sent = bearer(token) if headers == "token" else headers
    answer = server.client.request(method, path, headers=sent)
    page = server.client.request(method, path, headers={**sent, "Accept": "text/html"})
    assert answer.status_code == page.status_code == status
    if method != "HEAD":
        assert answer.json()["error"] == code and answer.json()["message"]
        assert page.headers["content-type"].startswith("text/html") and "<h1>" in page.text
    for response in (answer, page):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert ("www-authenticate" in response.headers) == (status == 401)
        assert (response.headers.get("allow") == "GET, HEAD") == (status == 405)
