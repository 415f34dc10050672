"""This engine's case leases: taken when it opens or resumes a case, renewed by a heartbeat, released at close.

Another process (``offboard resume`` here or on another machine sharing a PostgreSQL store)
takes a case only when its lease has expired (``limits.lease_seconds`` without a heartbeat)
or its holder is a process on this host that no longer exists (killed: no need to wait).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from ..config._logging import get_logger

__all__ = ["LeaseKeeper", "describe"]

log = get_logger("offboard.engine")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def describe(holder: dict[str, Any], now: datetime | None = None) -> str:
    """'process 4242 on host-a, lease expires in 27 s', for people deciding whether to wait (``now`` by the
    leases' clock, ``store.leases.now()``)."""
    left = (holder["expires_at"] - (now or datetime.now(UTC))).total_seconds()
    return f"process {holder['pid']} on {holder['host']}, lease expires in {max(0, round(left))} s"


class LeaseKeeper:
    """Holds this engine's leases; a daemon thread renews them every third of their lifetime."""

    def __init__(self, store: Any, ttl: float):
        self.store, self.ttl = store, ttl
        self.host, self.pid = socket.gethostname()[:255], os.getpid()
        self.owner = f"{self.host[:60]}:{self.pid}:{uuid.uuid4().hex[:12]}"
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _dead(self, holder: dict[str, Any]) -> bool:
        """A holder on this host whose process is gone (killed) cannot renew: its lease is void now."""
        return holder["host"] == self.host and holder["pid"] != self.pid and not _alive(holder["pid"])

    def take(self, case_id: str) -> dict[str, Any] | None:
        """Lease ``case_id`` to this engine; None when it is ours, else the live holder's row."""
        holder = self.store.leases.acquire(case_id, self.owner, self.host, self.pid, self.ttl, dead=self._dead)
        if holder is None:
            self._hold(case_id)
        return holder

    def on_insert(self, case_id: str) -> Any:
        """What a case's insert calls in its own transaction: the new case is leased the moment it exists."""

        def lease(conn: Any) -> None:
            self.store.leases.acquire(case_id, self.owner, self.host, self.pid, self.ttl, conn=conn)
            self._hold(case_id)

        return lease

    def release(self, case_id: str) -> None:
        """The case is final: nobody needs its lease any more."""
        with self._lock:
            self._held.discard(case_id)
        self.store.leases.release(case_id)

    def give_back(self, case_id: str) -> None:
        """Drop this engine's lease of a case it will not run after all."""
        with self._lock:
            self._held.discard(case_id)
        self.store.leases.release(case_id, self.owner)

    def _hold(self, case_id: str) -> None:
        with self._lock:
            self._held.add(case_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="offboard-leases", daemon=True)
                self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._lock:
                if not self._held:
                    continue
            try:
                held = self.store.leases.renew(self.owner, self.ttl)
            except Exception as exc:  # the database may be briefly away; the next beat tries again
                log.warning("lease heartbeat failed", error=str(exc))
                continue
            with self._lock:
                lost = self._held - held
            if lost:
                log.warning("case leases lost (expired and taken over)", cases=sorted(lost))

    def close(self) -> None:
        """Stop the heartbeat and give back every lease still held (cases left running: resume takes them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            held, self._held = set(self._held), set()
        for case_id in held:
            try:
                self.store.leases.release(case_id, self.owner)
            except Exception as exc:
                log.warning("lease release failed", case=case_id, error=str(exc))
