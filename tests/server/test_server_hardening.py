"""Hostile requests: every one gets a 4xx ``{error, message}`` and one log line, never a 5xx or a case."""

from __future__ import annotations

import asyncio
import json

import pytest
from structlog.testing import capture_logs

from offboard.web._headers import HeaderDeadlineProtocol, with_header_deadline

from ._support import bamboo_headers, bob_headers, event, sign

DEEP = b'{"a":' * 1000 + b"1" + b"}" * 1000  # 1,000 levels: json.loads raises RecursionError


def assert_refused_once(response, server, status: int | None = None) -> None:
    """A 4xx with {error, message}; nothing stored, nothing opened."""
    assert 400 <= response.status_code < 500, response.text
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and isinstance(body["message"], str) and body["message"]
    server.intake.run_once()
    assert server.cases() == [] and server.events() == []


def post_logged(server, path: str, body: bytes, headers: dict) -> tuple:
    with capture_logs() as logs:
        response = server.client.post(path, content=body, headers={"content-type": "application/json", **headers})
    refusals = [entry for entry in logs if entry["event"] == "webhook refused"]
    assert len(refusals) == 1, logs
    assert "exc_info" not in refusals[0] and "exception" not in refusals[0]
    return response, refusals[0]


# -- 2. no 5xx without a valid signature ------------------------------------------------


def raw_post_scope() -> dict:
    """An ASGI scope for ``POST /v1/events`` with a JSON content type, for tests that drive the app directly."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"host", b"test")],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }


def test_a_superscript_digit_as_webhook_timestamp_is_400(server):
    body = json.dumps(event()).encode()
    headers = sign(server.secret, body, at=server.clock())
    headers["webhook-timestamp"] = "²".encode("latin-1")  # "²".isdigit() is True; int("²") fails
    response, _ = post_logged(server, "/v1/events", body, headers)
    assert_refused_once(response, server, 400)
    assert response.json()["error"] == "bad_timestamp"


@pytest.mark.parametrize("stamp", ["-1e18", "1e308", "nan", "inf"])
def test_a_bamboohr_timestamp_out_of_range_is_400(hooks, stamp):
    body = b'{"employees": []}'
    response, _ = post_logged(hooks, "/v1/hooks/bamboohr", body, bamboo_headers(body, stamp))
    assert_refused_once(response, hooks, 400)
    assert response.json()["error"] == "bad_timestamp"


def test_a_non_ascii_bamboohr_signature_is_401(hooks):
    body = b'{"employees": []}'
    headers = bamboo_headers(body, str(int(hooks.clock().timestamp())))
    headers["X-BambooHR-Signature"] = headers["X-BambooHR-Signature"][:-1].encode() + b"\xe9"
    response, _ = post_logged(hooks, "/v1/hooks/bamboohr", body, headers)
    assert_refused_once(response, hooks, 401)
    assert response.json()["error"] == "bad_signature"


def test_a_non_ascii_hibob_signature_is_401(hooks):
    body = b'{"type": "employee.left", "data": {"employeeId": "E0001"}}'
    headers = {"Bob-Signature": bob_headers(body)["Bob-Signature"][:-1].encode() + b"\xe9"}
    response, _ = post_logged(hooks, "/v1/hooks/hibob", body, headers)
    assert_refused_once(response, hooks, 401)
    assert response.json()["error"] == "bad_signature"


# -- 3. no 5xx with a valid signature on deeply nested JSON -----------------------------


def test_deeply_nested_json_on_v1_events_is_400(server):
    headers = sign(server.secret, DEEP, at=server.clock())
    response, _ = post_logged(server, "/v1/events", DEEP, headers)
    assert_refused_once(response, server, 400)
    assert response.json()["error"] == "malformed_json" and "deep" in response.json()["message"]


def test_deeply_nested_json_on_the_hr_adapters_is_400(hooks):
    stamp = str(int(hooks.clock().timestamp()))
    for path, headers in (("/v1/hooks/bamboohr", bamboo_headers(DEEP, stamp)), ("/v1/hooks/hibob", bob_headers(DEEP))):
        response, _ = post_logged(hooks, path, DEEP, headers)
        assert_refused_once(response, hooks, 400)
        assert response.json()["error"] == "malformed_json" and "deep" in response.json()["message"]


# -- 4. one error boundary: whatever a parser raises is a 4xx, logged in one line -------


def test_a_payload_no_parser_expected_is_a_4xx_in_one_line_without_secrets(hooks):
    payload = {"employees": [{"id": "41", "changedFields": [{}], "fields": {"Status": "Inactive"}}]}
    body = json.dumps(payload).encode()
    headers = bamboo_headers(body, str(int(hooks.clock().timestamp())))
    response, line = post_logged(hooks, "/v1/hooks/bamboohr", body, headers)
    assert_refused_once(response, hooks)
    assert "bamboo-private-key" not in json.dumps(line, default=str)
    assert headers["X-BambooHR-Signature"] not in json.dumps(line, default=str)


def test_a_client_that_disconnects_mid_body_gets_no_traceback(server):
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": b'{"id": "x"', "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = raw_post_scope()
    with capture_logs() as logs:
        asyncio.run(server.app(scope, receive, send))  # raises if ClientDisconnect escapes
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert all(m["status"] < 500 for m in starts)
    assert [entry["event"] for entry in logs] == ["webhook refused"]
    assert server.events() == []


# -- 5. bounded /metrics labels ----------------------------------------------------------


def test_unknown_sources_share_one_metrics_label_and_the_404_lists_no_sources(hooks):
    for n in range(5):
        response = hooks.client.post(f"/v1/hooks/probe{n}", content=b"{}", headers={"content-type": "application/json"})
        assert response.status_code == 404 and response.json()["error"] == "unknown_source"
        assert "bamboohr" not in response.json()["message"] and "hibob" not in response.json()["message"]
    text = hooks.client.get("/metrics").text
    assert "probe" not in text
    assert 'offboard_hr_events_rejected_total{reason="unknown_source",source="unknown"} 5.0' in text


# -- 6. identity matching: one explicit rule, no folding of look-alikes into ASCII ---------

KELVIN = "\u212a"  # KELVIN SIGN: str.lower() turns it into ASCII "k"


@pytest.mark.parametrize(
    ("ref", "matches"),
    [
        ("zoe.okafor@corp.example", True),
        ("Zoe.OKafor@CORP.Example", True),  # ASCII local part and domain fold
        (f"zoe.o{KELVIN}afor@corp.example", False),  # never folded into ASCII
        ("E0042", True),
        ("e0042", True),
        ("zoe.okafor@corp.example ", True),
    ],
)
def test_find_person_folds_only_ascii(ref, matches):
    from offboard.models import Person
    from offboard.people import find_person

    zoe = Person(id="zoe.okafor@corp.example", email="zoe.okafor@corp.example", employee_id="E0042")
    assert (find_person([zoe], ref) is zoe) is matches


def test_a_non_ascii_identifier_matches_exactly_after_nfc_only():
    from offboard.inventory._inventory import PeopleIndex
    from offboard.models import Person
    from offboard.people import find_person, identity_key

    chloe = Person(id="chlo\u00e9@corp.example", email="chlo\u00e9@corp.example")  # é precomposed
    assert find_person([chloe], "chloe\u0301@corp.example") is chloe  # decomposed: the same after NFC
    assert find_person([chloe], "CHLO\u00c9@corp.example") is None  # a non-ASCII local part is never case-folded
    assert identity_key("CHLO\u00c9@CORP.EXAMPLE") == "CHLO\u00c9@corp.example"
    index = PeopleIndex([Person(id="zoe.okafor@corp.example", email="zoe.okafor@corp.example")])
    assert index.lookup("ZOE.OKAFOR@corp.example") == "zoe.okafor@corp.example"
    assert index.lookup(f"zoe.o{KELVIN}afor@corp.example") is None


@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\u2066", "\x07", "\ufeff", "\u200d"])
def test_a_person_reference_with_invisible_characters_is_422_naming_the_field(server, char):
    response = server.post(event(f"user1{char}@corp.example"))
    assert_refused_once(response, server, 422)
    assert response.json()["error"] == "invalid_event" and "person" in response.json()["message"]


def test_an_hr_adapter_reference_with_invisible_characters_is_422(hooks):
    payload = {"employees": [{"id": "41", "fields": {"Work Email": "user1\u202e@corp.example", "Status": "Inactive"}}]}
    body = json.dumps(payload).encode()
    headers = bamboo_headers(body, str(int(hooks.clock().timestamp())))
    response, _ = post_logged(hooks, "/v1/hooks/bamboohr", body, headers)
    assert_refused_once(response, hooks, 422)
    assert "Work Email" in response.json()["message"]


# -- 7. secrets: read as written, redacted at any length, compared in constant time ---------


def test_a_secret_file_loses_only_its_trailing_newline(tmp_path):
    from offboard.config._secrets import resolve_reference

    path = tmp_path / "secret"
    path.write_text("  padded secret \n")
    assert resolve_reference(f"file:{path}").reveal() == "  padded secret "
    path.write_text("crlf-secret\r\n")
    assert resolve_reference(f"file:{path}").reveal() == "crlf-secret"


def test_short_secrets_are_redacted_too():
    from offboard.config._logging import REDACTED, redact
    from offboard.config._secrets import Secret

    Secret("q7#", source="env:TINY")
    assert redact("token was q7# here") == f"token was {REDACTED} here"


def test_secrets_compare_in_constant_time(monkeypatch):
    import hmac

    from offboard.config._secrets import Secret

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b))
    assert Secret("same-value-123") == Secret("same-value-123") and Secret("one-value-1") != Secret("two-value-2")
    assert len(calls) == 2


@pytest.mark.parametrize("size", [16, 23])
def test_a_webhook_secret_under_24_bytes_is_refused_as_the_message_says(size):
    import base64
    import os

    from offboard.errors import ConfigError
    from offboard.web._settings import signing_key

    with pytest.raises(ConfigError, match="at least 24"):
        signing_key("whsec_" + base64.b64encode(os.urandom(size)).decode())
    assert len(signing_key("whsec_" + base64.b64encode(os.urandom(24)).decode())) == 24


def test_the_state_database_is_created_0600(tmp_path):
    from offboard.state._store import Store

    store = Store.open(None, tmp_path)
    store.close()
    assert (tmp_path / "offboard.db").stat().st_mode & 0o777 == 0o600


# -- 8. bounded resources: keep-alive, concurrent connections, body read time ----------------


def test_serve_passes_the_limits_to_uvicorn(make_company, monkeypatch, run):
    import uvicorn

    from ._support import configure, new_secret

    company = make_company(systems=1)
    configure(company, new_secret(), monkeypatch, server={"max_connections": 50, "keep_alive_seconds": 3})
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    assert run("--config", str(company.config_path), "serve").exit_code == 0
    assert seen["limit_concurrency"] == 50 and seen["timeout_keep_alive"] == 3
    assert seen["h11_max_incomplete_event_size"] == 16 * 1024  # server.max_header_bytes, by default


def test_serve_passes_the_header_size_limit_to_uvicorn(make_company, monkeypatch, run):
    import uvicorn

    from ._support import configure, new_secret

    company = make_company(systems=1)
    configure(company, new_secret(), monkeypatch, server={"max_header_bytes": 8192})
    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    assert run("--config", str(company.config_path), "serve").exit_code == 0
    assert seen["h11_max_incomplete_event_size"] == 8192  # httptools would ignore it: the protocol is h11's
    assert issubclass(seen["http"], HeaderDeadlineProtocol) and seen["http"].header_timeout == 10


def test_the_limits_have_safe_defaults():
    from offboard.web._settings import ServerSettings

    settings = ServerSettings(webhook_secret="env:X")
    assert settings.max_connections == 100 and settings.keep_alive_seconds == 5
    assert settings.read_timeout_seconds == 10 and settings.header_timeout_seconds == 10


def test_a_body_that_trickles_in_too_slowly_is_408(make_company, monkeypatch):
    from ._support import Clock, configure, new_secret, start, stop

    company = make_company(systems=1)
    secret = new_secret()
    configure(company, secret, monkeypatch, server={"read_timeout_seconds": 0.2})
    srv = start(company, secret, Clock())
    try:
        sent: list[dict] = []

        async def receive() -> dict:
            await asyncio.sleep(0.05)
            return {"type": "http.request", "body": b" ", "more_body": True}  # one byte at a time, forever

        async def send(message: dict) -> None:
            sent.append(message)

        scope = raw_post_scope()
        asyncio.run(asyncio.wait_for(srv.app(scope, receive, send), 5))
        (start_message,) = [m for m in sent if m["type"] == "http.response.start"]
        assert start_message["status"] == 408
    finally:
        stop(srv)


@pytest.fixture
def deadline_server():
    """uvicorn on a free loopback port with the header-deadline protocol (0.5 s) over a tiny app."""
    import socket
    import threading

    import uvicorn

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=with_header_deadline(0.5), lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.02)
    assert server.started, "uvicorn did not start"
    yield port
    server.should_exit = True
    thread.join(10)


def _read_all(sock, limit: float) -> bytes:
    sock.settimeout(limit)
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def _read_response(sock) -> bytes:
    """One whole answer of the tiny app (its body is ``ok``), however the bytes are split into packets."""
    data = b""
    while not data.endswith(b"\r\n\r\nok"):
        chunk = sock.recv(4096)
        assert chunk, f"the connection closed after {data!r}"
        data += chunk
    return data


def test_request_headers_that_trickle_in_are_cut_off_with_408(deadline_server):
    import socket
    import time

    with socket.create_connection(("127.0.0.1", deadline_server)) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: test\r\n")  # and never the end of the headers
        start = time.monotonic()
        answer = _read_all(sock, 10)  # the server closes the connection: recv returns b""
        waited = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 ") and b'"error": "request_timeout"' in answer
    assert waited < 5  # the 0.5 s deadline, not the client's patience


def test_a_slowloris_that_sends_a_byte_at_a_time_is_still_cut_off(deadline_server):
    import socket
    import time

    with socket.create_connection(("127.0.0.1", deadline_server)) as sock:
        start, answer = time.monotonic(), b""
        sock.settimeout(0.1)
        for byte in b"POST /v1/events HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 200:
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # the server closed the connection
                break
            if answer or time.monotonic() - start > 5:
                break
        if not answer:
            try:
                answer = _read_all(sock, 5)
            except OSError:
                pass
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - start < 5


def test_headers_in_time_are_answered_and_the_next_request_gets_its_own_deadline(deadline_server):
    import socket
    import time

    with socket.create_connection(("127.0.0.1", deadline_server)) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.3)  # well inside the deadline: the connection is kept
        sock.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET / HTTP/1.1\r\nHost: te")  # a second request that stalls
        assert _read_all(sock, 5).startswith(b"HTTP/1.1 408 ")
