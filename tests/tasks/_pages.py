"""Helpers for the task and approval page tests: a company with a contractor who holds a laptop and a phone,
served with personal links on."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..server._support import Clock, Server, configure, new_secret, start
from .test_tasks import CONTRACTOR, write_people

LINKS_ENV = "OFFBOARD_TEST_LINKS_SECRET"
MANAGER, IT = "mgr@corp.example", "it-desk@corp.example"
# 09:00 UTC on 2 November 2026: the contractor's last day (1 November in Auckland) has begun
OPENED = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)


def links_secret(monkeypatch: Any) -> str:
    value = secrets.token_hex(32)
    monkeypatch.setenv(LINKS_ENV, value)
    return value


def serve(make_company: Any, tmp_path: Path, monkeypatch: Any, *, server: dict | None = None, **extra: Any) -> Server:
    """A started app (TestClient) over a company whose contractor's case is open, with links on."""
    company = make_company(systems=2, people=4)
    hr = write_people(tmp_path)
    people = json.loads(hr.read_text())
    people[0]["timezone"] = "Europe/Berlin"  # the manager: due times shown in their zone too
    hr.write_text(json.dumps(people))
    links_secret(monkeypatch)
    configure(
        company,
        new_secret(),
        monkeypatch,
        server={"links_secret": f"env:{LINKS_ENV}", "public_url": "https://offboard.corp.example", **(server or {})},
        people=[{"type": "hr_export", "settings": {"path": str(hr)}}],
        tasks={"equipment": str(tmp_path / "equipment.csv"), "owners": {"it": [IT]}},
        **extra,
    )
    srv = start(company, "unused", Clock(OPENED))
    plan = srv.engine.plan(CONTRACTOR)
    case_id = srv.engine.open_case(plan, trigger="webhook", termination_at=OPENED)
    srv.engine.run_cases([case_id])
    srv.extra["case"] = case_id
    return srv


def link(srv: Server, task: str, recipient: str, purpose: str = "task") -> str:
    """The path of a personal link, as a reminder carries it."""
    links = srv.app.state.links
    subject = f"{srv.extra['case']}/{task}" if purpose == "task" else task
    return links.url(purpose, links.token(purpose, subject, recipient, srv.clock())).removeprefix(links.public_url)


def entries(srv: Server, *types: str) -> list[dict[str, Any]]:
    path = Path(srv.engine.data_dir) / "audit" / "entries.jsonl"
    found = [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
    return [e for e in found if not types or e["type"] in types]


def task_row(srv: Server, task: str) -> dict[str, Any]:
    return srv.engine.store.tasks.get(srv.extra["case"], task)


def urls(text: str) -> list[str]:
    return re.findall(r"https?://\S+/(?:tasks/t|approvals/a)/[A-Za-z0-9_.%-]+", text)


HTML = {"accept": "text/html"}


@contextlib.contextmanager
def live_server(sock: socket.socket, app: Any) -> Iterator[None]:
    """``app`` served by uvicorn on the bound ``sock`` until the block ends."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def bound_socket() -> tuple[socket.socket, str]:
    """A socket bound to a free loopback port, and the base URL it will serve."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"
