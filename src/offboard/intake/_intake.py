"""HR event intake: a durable store of received events, and the worker that acts on them.

An accepted event is committed (group commit: one fsync for every event that arrived
meanwhile) before the sender hears 202. The worker then turns each event into a case,
exactly once by (source, event id): at once, or at its effective time in the person's
zone. Cancellations and date changes act on scheduled terminations. Events are
processed in arrival order; a restart picks up whatever was accepted but not finished.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from ..config._durations import parse_duration
from ..errors import OffboardError, UnknownPerson
from ..models import CaseStatus, HREventStatus, Person
from ..state._store import Store, dumps, utcnow
from ._hr_adapters import HREvent

__all__ = ["Intake", "list_events", "effective_time", "check_effective", "Accepted"]

log = structlog.get_logger("offboard.intake")

MAX_ATTEMPTS = 5


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return _utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)") from None


def effective_time(value: str | None, zone: str, day_ends_at: time) -> datetime | None:
    """An RFC 3339 time as is; a local date-time in ``zone``; a date at ``day_ends_at`` in ``zone``."""
    if not value:
        return None
    text = value.strip()
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        return datetime.combine(day, day_ends_at, tzinfo=_zone(zone))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 time, a local date-time or a date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=_zone(zone))


def check_effective(event: HREvent) -> None:
    """Raise ValueError naming the problem if the event's time or zone cannot be read."""
    if event.timezone:
        _zone(event.timezone)
    effective_time(event.effective, event.timezone or "UTC", time(23, 59, 59))


@dataclass
class Accepted:
    """What the store said about one delivery."""

    outcome: str  # accepted | duplicate | conflict | replayed
    key: str
    status: str = HREventStatus.ACCEPTED.value
    received_at: datetime | None = None


class _NullMetrics:
    def outcome(self, status: str) -> None:
        pass

    def case_result(self, result: Any) -> None:
        pass


class Intake:
    """The event store and its worker, bound to one engine."""

    def __init__(
        self,
        engine: Any,
        *,
        clock: Callable[[], datetime] = utcnow,
        poll_seconds: float = 1.0,
        day_ends_at: time = time(23, 59, 59),
        default_timezone: str = "UTC",
        replay_window: timedelta = timedelta(minutes=10),
        metrics: Any = None,
    ):
        self.engine = engine
        self.store: Store = engine.store
        self.clock = clock
        self.poll_seconds = poll_seconds
        self.day_ends_at = day_ends_at
        self.default_timezone = default_timezone
        self.replay_window = replay_window
        self.metrics = metrics or _NullMetrics()
        self._queue: queue.SimpleQueue[tuple[Any, Future] | None] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._run_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._life_lock = threading.Lock()
        self._users = 0
        self._pruned_at: datetime | None = None
        self.ready = threading.Event()  # set once start-up recovery has run
        self._next_sweep: datetime | None = None
        self._reminded_at: datetime | None = None

    # -- life cycle ---------------------------------------------------------------

    def start(self, process: bool = True) -> None:
        """Start the committer and, with ``process``, the worker (which resumes first); nested starts share them."""
        with self._life_lock:
            self._users += 1
            if self._users > 1:
                return
            self._stop.clear()
            self._threads = [threading.Thread(target=self._commit_loop, name="offboard-intake-commit", daemon=True)]
            if process:
                self._threads.append(
                    threading.Thread(target=self._work_loop, name="offboard-intake-worker", daemon=True)
                )
            else:
                self.ready.set()
            for thread in self._threads:
                thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the threads once the last user has stopped; accepted events stay stored for the next start."""
        with self._life_lock:
            self._users = max(0, self._users - 1)
            if self._users or not self._threads:
                return
            self._stop.set()
            self._wake.set()
            self._queue.put(None)
            for thread in self._threads:
                thread.join(timeout)
            self._threads = []
            while True:  # anything queued after the stop marker is still written, never dropped
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[1].set_result(self._write_batch([item[0]])[0])

    def notify(self) -> None:
        self._wake.set()

    # -- accepting (the request path) ---------------------------------------------

    def submit(self, event: HREvent, body_hash: str, delivery: str | None) -> Future:
        """Queue an event for the next group commit; the future resolves once it is durable."""
        future: Future = Future()
        item = (event, body_hash, delivery, self.clock())
        if not self._threads:  # not started: commit inline
            future.set_result(self._write_batch([item])[0])
        else:
            self._queue.put((item, future))
        return future

    def _commit_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 500:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            try:
                results = self._write_batch([b[0] for b in batch])
            except Exception as exc:  # the database refused: every sender hears it and retries
                log.error("cannot store HR events", error=str(exc), count=len(batch))
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results):
                future.set_result(result)
            if any(r.outcome == "accepted" for r in results):
                self._wake.set()

    def _write_batch(self, items: list[tuple[HREvent, str, str | None, datetime]]) -> list[Accepted]:
        rows = [
            (
                dict(
                    key=event.key,
                    source=event.source,
                    event_id=event.id,
                    type=event.type,
                    person_ref=event.person,
                    payload=dumps(event.to_dict()),
                    body_hash=body_hash,
                    received_at=_utc(received),
                ),
                delivery,
            )
            for event, body_hash, delivery, received in items
        ]
        return [
            Accepted(outcome, key, status, received if outcome == "accepted" else None)
            for (outcome, key, status, _), (*_, received) in zip(self.store.hr_events.accept(rows), items)
        ]

    # -- processing (the worker) --------------------------------------------------

    def _work_loop(self) -> None:
        try:
            self.engine.resume()
        except Exception as exc:
            log.error("resuming interrupted cases failed", error=str(exc))
        self.ready.set()
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:
                log.error("HR event worker cycle failed", error=f"{type(exc).__name__}: {exc}")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def run_once(self) -> None:
        """One pass: new events in arrival order, due terminations, then due follow-ups."""
        with self._run_lock:
            opened: list[tuple[int, str]] = []
            for row in self.store.hr_events.new(MAX_ATTEMPTS):
                self._guarded(row, self._handle, opened)
            now = _utc(self.clock())
            for row in self.store.hr_events.due(now):
                self._guarded(row, self._fire_scheduled, opened)
            self._run(opened)
            for row in self.store.hr_events.opened():
                self._reconcile(row)
            try:
                self.engine.run_due_followups()
                self.engine.retry_owed()  # failed actions stay owed until verified or abandoned
            except Exception as exc:
                log.error("running due follow-ups or owed work failed", error=f"{type(exc).__name__}: {exc}")
            self._scheduled_sweep(now)
            self._remind(now)
            self._prune(now)

    def _remind(self, now: datetime) -> None:
        """Send checklist reminders every ``tasks.remind_every``; each goes once, so looking often is harmless."""
        config = self.engine.config
        if not config.notifiers or (
            self._reminded_at is not None and now - self._reminded_at < parse_duration(config.tasks.remind_every)
        ):
            return
        self._reminded_at = now
        from ..checklist._tasks import send_reminders

        try:
            sent = send_reminders(self.engine, now)
            if sent:
                log.info("checklist reminders sent", count=len(sent))
        except Exception as exc:  # a notifier problem never stops the worker; the next round tries again
            log.error("checklist reminders failed", error=f"{type(exc).__name__}: {exc}")

    def _scheduled_sweep(self, now: datetime) -> None:
        """Run the sweep (which also sends the managers' end-date notices) on ``sweep.schedule``, a cron expression."""
        schedule = (self.engine.config.sweep or {}).get("schedule")
        if not schedule:
            return
        from croniter import croniter

        if self._next_sweep is None:
            self._next_sweep = croniter(schedule, now).get_next(datetime)
        if now < self._next_sweep:
            return
        self._next_sweep = croniter(schedule, now).get_next(datetime)
        from ..inventory._sweep import run_sweep

        try:
            result = run_sweep(self.engine)
            log.info("scheduled sweep ran", halted=result.halted, cases=len(result.cases), reasons=result.reasons)
        except Exception as exc:  # a halted or failed sweep is recorded by the sweep; the server goes on
            log.error("scheduled sweep failed", error=f"{type(exc).__name__}: {exc}")

    def _update(self, seq: int, **values: Any) -> None:
        if values.get("status"):
            values["status"] = HREventStatus(values["status"]).value
            if values["status"] in HREventStatus.FINAL:
                values.setdefault("processed_at", _utc(self.clock()))
        if values.get("due_at") is not None:
            values["due_at"] = _utc(values["due_at"])
        self.store.hr_events.update(seq, **values)
        if "status" in values:
            self.metrics.outcome(values["status"])

    def _guarded(self, row: dict[str, Any], step: Callable[..., None], opened: list[tuple[int, str]]) -> None:
        try:
            step(row, opened)
        except Exception as exc:  # a bug or an outage: retry next pass, a few times, then say so
            attempts = row["attempts"] + 1
            detail = f"{type(exc).__name__}: {exc}"
            log.error("HR event processing failed", hr_event=row["key"], attempt=attempts, error=detail)
            final = attempts >= MAX_ATTEMPTS
            self._update(
                row["seq"], attempts=attempts, detail=detail, **({"status": HREventStatus.FAILED} if final else {})
            )
            if final:
                self._audit(row, "failed", None, detail)

    def _audit(
        self,
        row: dict[str, Any],
        outcome: str,
        person: Person | None,
        detail: str,
        case_id: str | None = None,
        at: datetime | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "event": row["key"],
            "source": row["source"],
            "event_type": row["type"],
            "outcome": outcome,
            "reference": row["person_ref"],
            "detail": detail,
        }
        if person is not None:
            fields["person"] = {"id": person.id, "employee_id": person.employee_id}
        if at is not None:
            fields["effective_at"] = _iso(at)
        self.engine.record("hr_event", case_id, fields)

    def _event(self, row: dict[str, Any]) -> HREvent:
        return HREvent.from_dict(json.loads(row["payload"]))

    def _when(self, event: HREvent, person: Person) -> datetime | None:
        zone = (
            event.timezone
            or (person.timezone if person.timezone and person.timezone != "UTC" else None)
            or self.default_timezone
        )
        return effective_time(event.effective, zone, self.day_ends_at)

    def _resolve(self, row: dict[str, Any]) -> Person | None:
        try:
            return self.engine.resolve(row["person_ref"])
        except UnknownPerson as exc:
            self._unresolved(row, str(exc))
            return None

    def _unresolved(self, row: dict[str, Any], why: str) -> None:
        log.warning("HR event names an unknown person", hr_event=row["key"], reference=row["person_ref"], detail=why)
        self._update(row["seq"], status=HREventStatus.UNRESOLVED, detail=why)
        self._audit(row, "unresolved", None, why)

    def _handle(self, row: dict[str, Any], opened: list[tuple[int, str]]) -> None:
        event = self._event(row)
        person = self._resolve(row)
        if person is None:
            return
        if person.id != row["person_id"]:
            self._update(row["seq"], person_id=person.id)
            row["person_id"] = person.id
        if event.type == "termination":
            self._terminate(row, event, person, opened)
        elif event.type == "termination_cancelled":
            self._cancel(row, person)
        elif event.type == "end_date_changed":
            self._change_date(row, event, person, opened)
        else:  # stored by an older version or a plugin: say so rather than drop it
            self._update(row["seq"], status=HREventStatus.FAILED, detail=f"unknown event type {event.type!r}")

    def _terminate(self, row: dict[str, Any], event: HREvent, person: Person, opened: list[tuple[int, str]]) -> None:
        at = self._when(event, person)
        now = self.clock()
        for other in self.store.hr_events.scheduled_for(person.id):
            if other["seq"] != row["seq"]:
                self._update(other["seq"], status=HREventStatus.SUPERSEDED, detail=f"superseded by {row['key']}")
                self._audit(other, "superseded", person, f"superseded by {row['key']}")
        if at is not None and at > now:
            self._update(row["seq"], status=HREventStatus.SCHEDULED, due_at=at, detail=f"case opens at {_iso(at)}")
            self._audit(row, "scheduled", person, f"case opens at {_iso(at)}", at=at)
            log.info("termination scheduled", hr_event=row["key"], person=person.id, at=_iso(at))
            return
        self._open(row, person, at or row["received_at"], opened)

    def _fire_scheduled(self, row: dict[str, Any], opened: list[tuple[int, str]]) -> None:
        person = self._resolve(row)
        if person is not None:
            self._open(row, person, row["due_at"], opened)

    def _open(self, row: dict[str, Any], person: Person, at: datetime, opened: list[tuple[int, str]]) -> None:
        reason = self._event(row).reason or f"HR {row['type']} event {row['key']}"
        existing = self.store.case_for_event(row["key"])
        if existing:  # opened before a crash: never twice
            self._update(row["seq"], status=HREventStatus.OPENED, case_id=existing, detail="case already open")
            opened.append((row["seq"], existing))
            return
        busy = self.store.find_cases(statuses=[CaseStatus.RUNNING.value], person_id=person.id, limit=1)
        if busy:
            self._update(
                row["seq"],
                status=HREventStatus.DONE,
                case_id=busy[0]["id"],
                detail=f"a case for {person.id} was already running",
            )
            return
        hold = self._event(row).legal_hold
        if hold:
            person = replace(person, legal_hold=hold)
        try:
            plan = self.engine.plan(person)
        except UnknownPerson as exc:
            self._unresolved(row, str(exc))
            return
        try:
            case_id = self.engine.open_case(
                plan, trigger="webhook", reason=reason, termination_at=_utc(at), source_event=row["key"]
            )
        except OffboardError as exc:
            self._update(row["seq"], status=HREventStatus.DONE, detail=str(exc))
            return
        self._update(row["seq"], status=HREventStatus.OPENED, case_id=case_id, detail="case opened")
        opened.append((row["seq"], case_id))

    def _run(self, opened: list[tuple[int, str]]) -> None:
        if not opened:
            return
        results = self.engine.run_cases(list(dict.fromkeys(c for _, c in opened)))
        by_case = {r.case_id: r for r in results}
        for seq, case_id in opened:
            result = by_case.get(case_id)
            status = result.status.value if result else "unknown"
            self._update(seq, status=HREventStatus.DONE, detail=f"case {status}")
        for result in results:
            self.metrics.case_result(result)

    def _reconcile(self, row: dict[str, Any]) -> None:
        case = self.store.case(row["case_id"]) if row["case_id"] else None
        if case is None or case["status"] in CaseStatus.FINAL:
            self._update(row["seq"], status=HREventStatus.DONE, detail=f"case {case['status'] if case else 'missing'}")

    def _cancel(self, row: dict[str, Any], person: Person) -> None:
        scheduled = [
            r for r in self.store.hr_events.scheduled_for(person.id) if r["type"] in ("termination", "end_date_changed")
        ]
        for other in scheduled:
            self._update(other["seq"], status=HREventStatus.CANCELLED, detail=f"cancelled by {row['key']}")
            self._audit(other, "cancelled", person, f"cancelled by {row['key']}")
        if scheduled:
            detail = f"cancelled {', '.join(r['key'] for r in scheduled)}"
            self._update(row["seq"], status=HREventStatus.DONE, detail=detail)
            self._audit(row, "termination_cancelled", person, detail)
            return
        ran = self._webhook_cases(person)
        if ran:
            detail = f"too late: case {ran} already ran; `offboard undo {ran}` restores what is reversible"
            self._update(row["seq"], status=HREventStatus.TOO_LATE, case_id=ran, detail=detail)
            self._audit(row, "too_late", person, detail, case_id=ran)
            log.warning("termination cancelled after its case ran", hr_event=row["key"], person=person.id, case=ran)
            return
        self._update(row["seq"], status=HREventStatus.DONE, detail="no scheduled termination to cancel")
        self._audit(row, "nothing_to_cancel", person, "no scheduled termination to cancel")

    def _webhook_cases(self, person: Person) -> str | None:
        return self.store.latest_case_id(person.id, trigger="webhook")

    def _change_date(self, row: dict[str, Any], event: HREvent, person: Person, opened: list[tuple[int, str]]) -> None:
        scheduled = [
            r for r in self.store.hr_events.scheduled_for(person.id) if r["type"] in ("termination", "end_date_changed")
        ]
        if not scheduled:
            ran = self._webhook_cases(person)
            if ran:
                self._update(
                    row["seq"],
                    status=HREventStatus.DONE,
                    case_id=ran,
                    detail=f"already offboarded by case {ran}; date change ignored",
                )
                return
            self._terminate(row, event, person, opened)  # a new end date where none was scheduled
            return
        at = self._when(event, person)
        if at is None:
            raise ValueError("end_date_changed needs an effective time")
        target = scheduled[-1]
        self._update(target["seq"], due_at=at, detail=f"case opens at {_iso(at)} (moved by {row['key']})")
        self._update(row["seq"], status=HREventStatus.DONE, detail=f"moved {target['key']} to {_iso(at)}")
        self._audit(row, "rescheduled", person, f"moved {target['key']} to {_iso(at)}", at=at)
        if at <= self.clock():
            target = self.store.hr_events.get(target["seq"]) or target
            self._open(target, person, at, opened)

    def _prune(self, now: datetime) -> None:
        if self._pruned_at and now - self._pruned_at < timedelta(minutes=1):
            return
        self._pruned_at = now
        self.store.hr_events.prune_deliveries(now - self.replay_window)


def list_events(store: Store, *, unresolved: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    """Received events, newest first, with what became of them."""
    statuses = [HREventStatus.UNRESOLVED, HREventStatus.FAILED] if unresolved else None
    rows = store.hr_events.latest(statuses=statuses, limit=limit)
    out = []
    for row in rows:
        event = json.loads(row["payload"])
        out.append(
            {
                "event": row["key"],
                "source": row["source"],
                "type": row["type"],
                "person": row["person_ref"],
                "person_id": row["person_id"],
                "effective": event.get("effective"),
                "timezone": event.get("timezone"),
                "status": row["status"],
                "case": row["case_id"],
                "due_at": _iso(row["due_at"]),
                "detail": row["detail"],
                "attempts": row["attempts"],
                "received_at": _iso(row["received_at"]),
                "processed_at": _iso(row["processed_at"]),
            }
        )
    return out
