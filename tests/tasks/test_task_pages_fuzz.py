"""Hostile input for the task and approval pages (as ``tests/server/test_server_fuzz.py`` does for the intake):
no token, header or form gives a 5xx, and nothing but a valid link with a valid form changes anything.

Tokens are generated (random text, valid tokens cut, extended, re-signed with another key or another
purpose); forms are generated (any fields, odd text, files where text belongs, broken multipart).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offboard.checklist._links import Links
from offboard.config._secrets import Secret

from ..server._support import UNLIMITED, stop
from ._pages import MANAGER, entries, serve, task_row

FIELDS = [
    "successor",
    "link",
    "note",
    "condition",
    "asset_tag_confirmed",
    "held",
    "date",
    "action",
    "approver",
    "decision",
]
odd_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "yes", "missing", "approve", "https://", "\u202e", "\x00", "2026-02-30", "9999-12-31", "ÿ"]),
)
TASKS = ["handover", "exit-interview", "return-lap-1001", "announce-end"]


@pytest.fixture
def srv(make_company, tmp_path, monkeypatch, home):
    """The contractor's case served with links on and no per-client limit (hundreds of requests at one instant)."""
    server = serve(make_company, tmp_path, monkeypatch, server=UNLIMITED)
    yield server
    stop(server)


@st.composite
def tokens(draw, good: str, links: Links, now) -> str:
    kind = draw(st.sampled_from(["text", "cut", "extended", "other_key", "other_purpose", "swapped"]))
    if kind == "text":
        return draw(st.text(min_size=1, max_size=200))
    if kind == "cut":
        return good[: draw(st.integers(min_value=1, max_value=len(good) - 1))]
    if kind == "extended":
        return good + draw(st.text(min_size=1, max_size=10))
    if kind == "swapped":
        body, sig = good.split(".")
        return f"{sig}.{body}"
    if kind == "other_key":
        return Links(Secret("another-key-" + "f" * 40, "env:OTHER")).token("task", "x/handover", MANAGER, now)
    return links.token(draw(st.sampled_from(["approval", "session", "signin"])), good_subject(good), MANAGER, now)


def good_subject(token: str) -> str:
    import base64
    import json

    body = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["s"]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    data=st.data(),
    route=st.sampled_from(["/tasks/t/", "/approvals/a/"]),
    method=st.sampled_from(["GET", "POST"]),
    form=st.dictionaries(st.sampled_from(FIELDS), odd_text, max_size=5),
    content_type=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=zz",
            "text/plain",
            "",
            "multipart/form-data",
        ]
    ),
    accept=st.sampled_from(["text/html", "application/json", "*/*", ""]),
)
def test_no_bad_link_or_form_gives_a_5xx_or_changes_anything(srv, data, route, method, form, content_type, accept):
    links = srv.app.state.links
    good = links.token("task", f"{srv.extra['case']}/handover", MANAGER, srv.clock())
    token = data.draw(tokens(good, links, srv.clock()))
    before = [task_row(srv, t) for t in TASKS], len(entries(srv))
    url = route + quote(token, safe="")
    headers = {"accept": accept, **({"content-type": content_type} if content_type else {})}
    if method == "GET":
        response = srv.client.get(url, headers={"accept": accept})
    elif content_type.startswith("application/x-www"):
        response = srv.client.post(url, data=form, headers={"accept": accept})
    else:
        body = data.draw(st.binary(max_size=300)) if data.draw(st.booleans()) else repr(form).encode()
        response = srv.client.post(url, content=body, headers=headers)
    assert response.status_code < 500, response.text
    assert response.status_code >= 400 or (method == "GET" and token == good)
    if response.status_code >= 400 and "text/html" not in accept:
        assert set(response.json()) == {"error", "message"}
    assert ([task_row(srv, t) for t in TASKS], len(entries(srv))) == before


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    task=st.sampled_from(TASKS),
    form=st.dictionaries(st.sampled_from(FIELDS), odd_text, max_size=6),
    as_file=st.sampled_from([None, "photo", "file", "successor", "note"]),
    upload=st.binary(max_size=200),
)
def test_any_form_on_a_valid_link_is_a_4xx_or_a_clean_close(srv, task, form, as_file, upload):
    owner = "it-desk@corp.example" if task.startswith("return-") else MANAGER
    token = srv.app.state.links.token("task", f"{srv.extra['case']}/{task}", owner, srv.clock())
    before = task_row(srv, task)
    files = {as_file: ("f.bin", upload, "application/octet-stream")} if as_file else None
    response = srv.client.post(f"/tasks/t/{token}", data=form, files=files)
    assert response.status_code < 500, response.text
    after = task_row(srv, task)
    if response.status_code >= 400:
        assert after == before and set(response.json()) == {"error", "message"}
    else:
        assert response.status_code == 200
        reopened = after["status"] != "open"
        missing = task.startswith("return-") and form.get("condition") == "missing"
        assert reopened or missing
        if reopened:  # put it back for the next example
            srv.engine.store.tasks.update(after["id"], status="open", closed_by=None, closed_at=None, note="")
