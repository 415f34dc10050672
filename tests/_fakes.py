"""A small but real target system for engine tests: accounts in a SQLite file.

Several processes can share one system (the crash test kills one mid-run), every
write that changes state is counted, and faults are queued in the database so they
are consumed exactly once whichever thread or process meets them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from pydantic import Field

import offboard
from offboard import (
    Account,
    AccountPage,
    Action,
    ActionKind,
    CheckResult,
    Connector,
    ConnectorSettings,
    Person,
    Receipt,
    Verification,
)
from offboard.errors import AuthError, PermanentError, PermissionDenied, RateLimited, TransientError

SCHEMA = """
create table if not exists accounts (id text primary key, name text, email text, employee_id text,
  enabled int, sessions int, groups text, admin int);
create table if not exists writes (n integer primary key, account text, kind text, changed int, t float);
create table if not exists calls (n integer primary key, op text, started float, ended float);
create table if not exists faults (n integer primary key, status int, retry_after float);
"""


def open_db(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    db.execute("pragma journal_mode=wal")
    db.executescript(SCHEMA)
    return db


def seed(path: str | Path, people: list[tuple[str, str]], admins: tuple[str, ...] = ()) -> None:
    """Create accounts for (login, email) pairs, each in two groups with one session."""
    db = open_db(path)
    for i, (login, email) in enumerate(people):
        db.execute(
            "insert or replace into accounts values (?,?,?,?,1,1,?,?)",
            (f"id-{login}", login, email, f"E{i:04d}", json.dumps(["staff", f"team-{i % 3}"]), int(login in admins)),
        )
    db.close()


def add_faults(path: str | Path, *faults: tuple[int, float | None]) -> None:
    db = open_db(path)
    db.executemany("insert into faults (status, retry_after) values (?, ?)", faults)
    db.close()


def changes(path: str | Path) -> list[tuple[str, str]]:
    """Every state-changing write the system received, in order."""
    db = open_db(path)
    rows = db.execute("select account, kind from writes where changed = 1 order by n").fetchall()
    db.close()
    return rows


def calls(path: str | Path) -> list[tuple[str, float, float]]:
    db = open_db(path)
    rows = db.execute("select op, started, ended from calls order by n").fetchall()
    db.close()
    return rows


class TestSystem(Connector):
    """Accounts in a SQLite file, with latency, queued faults and a lying mode."""

    __test__ = False
    name = "testsys"
    default_concurrency = 8

    class Settings(ConnectorSettings):
        path: str
        latency_ms: float = 0
        page_size: int = Field(default=50, ge=1)  # list_accounts' page size
        lie: bool = False  # acknowledge writes without applying them
        token: offboard.Secret | None = None
        forbid: list[str] = Field(default_factory=list)  # action kinds answered 403
        careless_logging: bool = False  # log the bearer token, as a careless SDK would (tests the redactor)
        scramble_password: bool = False  # disabling also scrambles the password (as the LDAP connector can)

    def _db(self) -> sqlite3.Connection:
        return open_db(self.settings.path)

    def _call(self, op: str, fn: Any) -> Any:
        if self.settings.token and self.settings.careless_logging:  # the engine's redactor must catch it
            self.log.debug("request", op=op, header=f"Bearer {self.settings.token.reveal()}")
        db = self._db()
        try:
            started = time.time()
            if self.settings.latency_ms:
                time.sleep(self.settings.latency_ms / 1000)
            db.execute("begin immediate")
            fault = db.execute("select n, status, retry_after from faults order by n limit 1").fetchone()
            if fault:
                db.execute("delete from faults where n = ?", (fault[0],))
                db.execute("commit")
                _raise(fault[1], fault[2], self.instance, self.settings.token)
            result = fn(db)
            db.execute("insert into calls (op, started, ended) values (?,?,?)", (op, started, time.time()))
            db.execute("commit")
            return result
        finally:
            if db.in_transaction:
                db.execute("rollback")
            db.close()

    def _row(self, db: sqlite3.Connection, account_id: str) -> dict[str, Any]:
        row = db.execute(
            "select id, name, email, enabled, sessions, groups, admin from accounts where id = ?", (account_id,)
        ).fetchone()
        if row is None:
            raise PermanentError(f"no account {account_id}", system=self.instance, status=404)
        return {
            "id": row[0],
            "name": row[1],
            "email": row[2],
            "enabled": bool(row[3]),
            "sessions": row[4],
            "groups": json.loads(row[5]),
            "admin": bool(row[6]),
        }

    def state(self, account_id: str) -> dict[str, Any]:
        db = self._db()
        try:
            return self._row(db, account_id)
        finally:
            db.close()

    def check(self) -> CheckResult:
        return self._call("check", lambda db: CheckResult(True, identity="tester"))

    def discover(self, person: Person) -> list[Account]:
        def run(db: sqlite3.Connection) -> list[Account]:
            emails = list(person.emails) or ["\x00"]
            marks = ",".join("?" * len(emails))
            rows = db.execute(
                f"select id, name, email, enabled, admin from accounts where lower(email) in ({marks}) or employee_id = ?",
                (*emails, person.employee_id or "\x00"),
            ).fetchall()
            return [Account(self.instance, r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in rows]

        return self._call("discover", run)

    def list_accounts(self, cursor: str | None = None) -> AccountPage:
        def run(db: sqlite3.Connection) -> AccountPage:
            offset, size = int(cursor or 0), self.settings.page_size
            rows = db.execute(
                "select id, name, email, enabled, admin from accounts order by id limit ? offset ?", (size, offset)
            ).fetchall()
            return AccountPage(
                tuple(Account(self.instance, r[0], r[1], r[2], bool(r[3]), bool(r[4])) for r in rows),
                str(offset + size) if len(rows) == size else None,
            )

        return self._call("list", run)

    def _write(self, action: Action, field: str, new: Any) -> Receipt:
        if action.kind.value in self.settings.forbid:
            raise PermissionDenied(permissions=(f"Accounts.{action.kind.value}",), system=self.instance, status=403)

        def run(db: sqlite3.Connection) -> Receipt:
            row = self._row(db, action.account.id)
            before = row[field]
            changed = before != new
            if changed and not self.settings.lie:
                db.execute(
                    f"update accounts set {field} = ? where id = ?",
                    (json.dumps(new) if field == "groups" else new, action.account.id),
                )
            db.execute(
                "insert into writes (account, kind, changed, t) values (?,?,?,?)",
                (action.account.id, action.kind.value, int(changed and not self.settings.lie), time.time()),
            )
            return Receipt(action, changed, {field: before}, reference=f"req-{action.account.id}-{action.kind.value}")

        return self._call(action.kind.value, run)

    def disable_account(self, action: Action) -> Receipt:
        receipt = self._write(action, "enabled", False)
        if self.settings.scramble_password and receipt.changed:
            before = {**receipt.before, "irreversible": ["the password was scrambled: set a new one"]}
            return Receipt(receipt.action, receipt.changed, before, reference=receipt.reference)
        return receipt

    def revoke_sessions(self, action: Action) -> Receipt:
        return self._write(action, "sessions", 0)

    def remove_memberships(self, action: Action) -> Receipt:
        return self._write(action, "groups", [])

    def undo_disable_account(self, receipt: Receipt) -> Receipt:
        return self._write(Action(receipt.action.kind, receipt.action.account), "enabled", receipt.before["enabled"])

    def undo_remove_memberships(self, receipt: Receipt) -> Receipt:
        return self._write(Action(receipt.action.kind, receipt.action.account), "groups", receipt.before["groups"])

    def verify(self, action: Action, receipt: Receipt | None = None) -> Verification:
        want = {
            ActionKind.DISABLE_ACCOUNT: ("enabled", False),
            ActionKind.REVOKE_SESSIONS: ("sessions", 0),
            ActionKind.REMOVE_MEMBERSHIPS: ("groups", []),
        }[action.kind]

        def run(db: sqlite3.Connection) -> Verification:
            row = self._row(db, action.account.id)
            value = row[want[0]]
            ok = value == want[1]
            if isinstance(value, bool):
                words = str(value).lower()
            elif isinstance(value, list):
                words = ", ".join(value) or "none"
            else:
                words = str(value)
            return Verification(
                action,
                ok,
                {want[0]: value},
                f"{want[0]}: {words}" if ok else f"{action.account.name}: {want[0]} is still {words}",
            )

        return self._call("verify", run)


def _raise(status: int, retry_after: float | None, system: str, token: offboard.Secret | None = None) -> None:
    if status == 429:
        raise RateLimited(retry_after=retry_after, system=system, status=429)
    if status >= 500:
        raise TransientError(f"HTTP {status}", system=system, status=status)
    shown = token.reveal() if token else "-"  # SDK errors sometimes echo the credential
    if status == 401:
        raise AuthError(f"HTTP 401: credentials rejected for {shown}", system=system, status=status)
    if status == 403:  # authenticated, but not allowed: what a vendor's 403 means
        raise PermissionDenied(
            f"HTTP 403: {shown} may not read accounts", permissions=("Accounts.Read",), system=system, status=status
        )
    raise PermanentError(f"HTTP {status}", system=system, status=status)


@offboard.hookimpl
def register_connectors(register):
    register(TestSystem)
