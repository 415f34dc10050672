"""The one channel for engine events: the state store and the signed audit log."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config._durations import iso
from ..config._logging import redact
from ..errors import AuditError
from ..state._store import Store, dumps

__all__ = ["Recorder", "iso", "open_audit"]


class Recorder:
    """The one channel for engine events: the store, then the audit log when present.

    Audit entries are group-committed: concurrent callers queue their entries, one of
    them appends the whole queue with a single fsync, and each caller returns only once
    its own entry is durable.
    """

    def __init__(self, store: Store, audit: Any = None):
        self.store = store
        self.audit = audit
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._sealer: Any = None
        self._sealing: Any = None
        self._reseal = False

    def __call__(
        self,
        type: str,
        case_id: str | None,
        fields: dict[str, Any],
        *,
        action: tuple[int, dict[str, Any]] | None = None,
    ) -> None:
        """Record an event; ``action`` = (action id, column values) updates that action in the same transaction."""
        payload = redact(json.loads(dumps(fields)))
        # The signed log first, then the state: a crash in between leaves the state behind, so
        # the step is redone and logged again (the log's last word counts), never left unlogged.
        if self.audit is not None:
            self._append(type, payload)
        self.store.add_event(case_id, type, payload, action=action)

    def _append(self, type: str, payload: dict[str, Any]) -> None:
        ticket = _Ticket(type, payload)
        with self._queue_lock:
            self._queue.append(ticket)
        while not ticket.done.is_set():
            if self._flush_lock.acquire(timeout=0.05):
                try:
                    with self._queue_lock:
                        batch, self._queue = self._queue, []
                    if batch:
                        try:
                            self.audit.append_many([(t.type, t.payload) for t in batch])
                        except BaseException as exc:
                            for t in batch:
                                t.error = exc
                        for t in batch:
                            t.done.set()
                finally:
                    self._flush_lock.release()
        if ticket.error is not None:
            raise ticket.error

    def seal(self) -> None:
        """Sign a checkpoint over everything recorded so far."""
        if self.audit is not None:
            self.audit.checkpoint()

    def seal_soon(self) -> None:
        """Sign a checkpoint in the background (entries are already durable); ``close`` waits for it."""
        if self.audit is None:
            return
        with self._queue_lock:
            if self._sealing is not None and not self._sealing.done():
                self._reseal = True  # one more after the running one covers what came since
                return
            if self._sealer is None:
                from concurrent.futures import ThreadPoolExecutor

                self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="offboard-seal")
            self._sealing = self._sealer.submit(self._seal_loop)

    def _seal_loop(self) -> None:
        while True:
            self.audit.checkpoint()
            with self._queue_lock:
                if not self._reseal:
                    return
                self._reseal = False

    def wait_sealed(self) -> None:
        """Wait until every background seal asked for so far has signed its checkpoint."""
        while True:
            with self._queue_lock:
                sealing = self._sealing
            if sealing is None:
                return
            sealing.result()  # a failed seal is an error, not a silent gap
            with self._queue_lock:
                if self._sealing is sealing:
                    return

    def close(self) -> None:
        """Wait for a background seal, then close the audit log."""
        self.wait_sealed()
        if self._sealer is not None:
            self._sealer.shutdown(wait=True)
        if self.audit is not None:
            self.audit.close()


@dataclass
class _Ticket:
    type: str
    payload: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


def open_audit(data_dir: Path, origin: str | None = None, seals: Any = None, witnesses: Any = None) -> Any:
    """The audit log in ``data_dir/audit``; its origin is the configured one, else the one it was created with."""
    try:
        from ..audit import AuditLog, read_origin
    except ImportError as exc:  # never run without the signed log: say so at start-up
        raise AuditError(f"cannot open the audit log: the offboard.audit package failed to import ({exc})") from exc
    directory = data_dir / "audit"
    if origin is None:
        try:
            origin = read_origin(directory)
        except AuditError:  # a new log: name it after this machine
            origin = f"offboard/{socket.gethostname()}"
    return AuditLog.open(directory, origin=origin, seals=seals, witnesses=witnesses)
