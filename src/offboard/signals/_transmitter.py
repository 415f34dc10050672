"""offboard as an SSF transmitter: what each stream is owed, and push delivery with retries.

The feed reads the engine's own records (the ``events`` table every process writes, so a
``revoke`` or ``undo`` run from the CLI is seen too) after a stored cursor: a verified
``disable_account`` owes CAEP ``session-revoked`` and RISC ``account-disabled`` (and CAEP
``credential-change`` when the disable scrambled a password); an undone one owes RISC
``account-enabled``. Each SET is signed once and queued in ``ssf_outbox`` with the cursor in
one transaction, one per stream, case and event type. The pusher POSTs them (RFC 8935) in
order per stream, retrying with backoff until the receiver answers 202, so a receiver that is
down gets every SET when it returns, with the same ``jti``. Each delivery attempt is recorded
in the audit log: receiver, stream, jti, event, time and result.
"""

from __future__ import annotations

import hmac
import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from ..config._secrets import Secret, resolve_reference
from ..errors import ConfigError, SecretError
from ..models import Person
from ..state._signals import DELIVERED, FAILED
from ._keys import SigningKey
from ._settings import SignalsSettings
from ._subjects import (
    ACCOUNT_DISABLED,
    ACCOUNT_ENABLED,
    CREDENTIAL_CHANGE,
    EVENTS_SUPPORTED,
    SESSION_REVOKED,
    VERIFICATION,
    matches,
    person_subjects,
)

__all__ = ["Transmitter", "PUSH", "POLL", "delivered"]

log = structlog.get_logger("offboard.signals")

PUSH, POLL = "urn:ietf:rfc:8935", "urn:ietf:rfc:8936"
SET_CONTENT_TYPE = "application/secevent+jwt"


class Transmitter:
    """Streams, the outbox feed and the pusher, for one engine."""

    def __init__(
        self,
        engine: Any,
        settings: SignalsSettings,
        key: SigningKey,
        *,
        clock: Callable[[], datetime],
        transport: httpx.BaseTransport | None = None,
    ):
        self.engine = engine
        self.store = engine.store
        self.settings = settings
        self.key = key
        self.clock = clock
        self.tokens: dict[str, Secret] = {}
        self.push_headers: dict[str, Secret] = {}
        for name, receiver in settings.receivers.items():
            for field, into in (("token", self.tokens), ("push_authorization", self.push_headers)):
                reference = getattr(receiver, field)
                if reference is None:
                    continue
                try:
                    into[name] = resolve_reference(reference)
                except SecretError as exc:
                    raise ConfigError(f"server.signals.receivers.{name}.{field}: {exc}") from None
        self._http = httpx.Client(timeout=settings.push_timeout_seconds, transport=transport, follow_redirects=False)
        self._wake = threading.Event()
        self._push_wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._push_lock = threading.Lock()
        self._busy: set[tuple[str, str | None]] = set()  # (stream, person) with a SET out right now
        # Receivers answer in parallel: one person's SETs stay in order, different people's go at once.
        self._pool = ThreadPoolExecutor(max_workers=settings.push_concurrency, thread_name_prefix="offboard-ssf-push")

    # -- receivers and streams ----------------------------------------------------------

    def receiver_for(self, token: str) -> str | None:
        """The receiver whose bearer token is ``token`` (constant-time comparisons), or None."""
        found = None
        for name, secret in self.tokens.items():
            if hmac.compare_digest(secret.reveal().encode(), token.encode("utf-8", "replace")):
                found = name
        return found

    def audience(self, receiver: str) -> str | list[str]:
        return self.settings.receivers[receiver].audience or receiver

    def poll_url(self, stream_id: str) -> str:
        return f"{self.settings.issuer}/ssf/poll/{stream_id}"

    def render(self, stream: dict[str, Any]) -> dict[str, Any]:
        """The stream configuration a receiver reads (SSF 1.0 "Stream Configuration")."""
        config = stream["config"]
        delivery = dict(config["delivery"])
        if "authorization_header" in delivery:  # a credential of the receiver's: kept, never shown again
            delivery["authorization_header"] = "(set)"
        if delivery["method"] == POLL:
            delivery["endpoint_url"] = self.poll_url(stream["stream_id"])
        out: dict[str, Any] = {
            "stream_id": stream["stream_id"],
            "iss": self.settings.issuer,
            "aud": self.audience(stream["receiver"]),
            "delivery": delivery,
            "events_supported": list(EVENTS_SUPPORTED),
            "events_delivered": delivered(config.get("events_requested")),
            "min_verification_interval": self.settings.min_verification_interval,
        }
        if config.get("events_requested") is not None:
            out["events_requested"] = config["events_requested"]
        if config.get("description") is not None:
            out["description"] = config["description"]
        return out

    def new_stream_id(self) -> str:
        return uuid.uuid4().hex

    def configure_streams(self) -> None:
        """Create or update the stream of every receiver with ``push_to`` (id ``config-<name>``, every person)."""
        now = self.clock()
        for name, receiver in self.settings.receivers.items():
            if receiver.push_to is None:
                continue
            stream_id = f"config-{name}"[:64]
            config = {
                "delivery": {"method": PUSH, "endpoint_url": receiver.push_to},
                "events_requested": receiver.events,
                "description": f"configured in server.signals.receivers.{name}",
                "all_subjects": True,
            }
            existing = self.store.signals.stream(stream_id)
            if existing is None:
                self.store.signals.create_stream(stream_id, name, config, now)
            elif existing["config"] != config:
                self.store.signals.update_stream(stream_id, now, config=config)

    # -- the feed -----------------------------------------------------------------------

    def feed(self) -> int:
        """Queue the SETs that engine events recorded since the cursor owe; the number queued."""
        with self._lock:
            position = self.store.signals.start_cursor()
            records = self.store.signals.events_after(position, ("action",))
            if not records:
                return 0
            streams = [s for s in self.store.signals.streams() if s["status"] != "disabled"]
            subjects = {k: [json.loads(v) for v in vs] for k, vs in self.store.signals.subjects().items()}
            people: dict[str, Person | None] = {}
            rows: list[dict[str, Any]] = []
            wanted = {e for s in streams for e in delivered(s["config"].get("events_requested"))}
            for record in records:
                for event_type, cause, fields in self._owed(record, wanted):
                    person = self._person(record["case_id"], people)
                    if person is None:
                        continue
                    rows.extend(self._fan_out(streams, subjects, person, event_type, cause, fields, record))
            queued = self.store.signals.enqueue(rows, records[-1]["id"])
        if queued:
            self._push_wake.set()
        return len(queued)

    def _owed(self, record: dict[str, Any], wanted: set[str]) -> list[tuple[str, str, dict[str, Any]]]:
        payload = record["payload"]
        if payload.get("kind") != "disable_account":
            return []
        case_id = record["case_id"]
        at = int(record["created_at"].timestamp())
        reason = {"en": f"offboarded by offboard case {case_id}"}
        base = {"event_timestamp": at, "initiating_entity": "policy", "reason_admin": reason}
        if payload.get("result") == "verified":
            owed = [(SESSION_REVOKED, case_id, dict(base)), (ACCOUNT_DISABLED, case_id, {})]
            if CREDENTIAL_CHANGE in wanted and self._scrambled(case_id, payload):
                change = {**base, "credential_type": "password", "change_type": "update"}
                owed.append((CREDENTIAL_CHANGE, case_id, change))
            return owed
        if payload.get("result") == "undone":
            return [(ACCOUNT_ENABLED, case_id, {})]
        return []

    def _scrambled(self, case_id: str, payload: dict[str, Any]) -> bool:
        """Whether the verified disable also scrambled the password (its receipt says so)."""
        account = (payload.get("account") or {}).get("id")
        receipt = self.store.signals.receipt(case_id, str(payload.get("system")), str(account), "disable_account")
        if not receipt:
            return False
        before = json.loads(receipt).get("before") or {}
        return any("password" in str(item).lower() for item in before.get("irreversible") or ())

    def _person(self, case_id: str | None, people: dict[str, Person | None]) -> Person | None:
        if case_id is None:
            return None
        if case_id not in people:
            case = self.store.case(case_id)
            people[case_id] = Person.from_dict(json.loads(case["person"])) if case else None
        return people[case_id]

    def _fan_out(
        self,
        streams: list[dict[str, Any]],
        subjects: dict[str, list[dict[str, Any]]],
        person: Person,
        event_type: str,
        cause: str,
        fields: dict[str, Any],
        record: dict[str, Any],
    ) -> list[dict[str, Any]]:
        own = person_subjects(person, self.settings.issuer)
        rows = []
        for stream in streams:
            if event_type not in delivered(stream["config"].get("events_requested")):
                continue
            added = list(subjects.get(stream["stream_id"], []))
            if stream["config"].get("all_subjects"):
                added.append({"format": "complex", "user": own[0]})  # every person: named by email
            hit = next((s for s in added if matches(s, own, self.settings.tenant)), None)
            if hit is None:
                continue
            subject = self._subject(hit, own)
            fields = {**fields, "subject": subject}  # SSF 1.0 3.1.1: existing CAEP/RISC events MAY carry it too
            rows.append(self._row(stream, event_type, subject, fields, cause, record["created_at"], person.id))
        return rows

    def _subject(self, added: dict[str, Any], own: list[dict[str, Any]]) -> dict[str, Any]:
        """The subject the SET names: the receiver's own simple identifier, else the person's email (complex)."""
        if added.get("format") not in ("complex", "aliases"):
            return added
        user = next((s for s in own if s["format"] == "email"), own[0])
        if self.settings.tenant is None:
            return user
        return {"format": "complex", "user": user, "tenant": self.settings.tenant}

    def _row(
        self,
        stream: dict[str, Any],
        event_type: str,
        subject: dict[str, Any],
        fields: dict[str, Any],
        cause: str,
        caused_at: datetime,
        person_id: str | None,
    ) -> dict[str, Any]:
        jti = uuid.uuid4().hex
        now = self.clock()
        claims = {
            "iss": self.settings.issuer,
            "aud": self.audience(stream["receiver"]),
            "jti": jti,
            "iat": int(now.timestamp()),
            "txn": cause,
            "sub_id": subject,
            "events": {event_type: fields},
        }
        return dict(
            stream_id=stream["stream_id"],
            jti=jti,
            dedupe=f"{cause}:{event_type}"[:300],
            event_type=event_type,
            person_id=person_id,
            token=self.key.sign(claims),
            next_attempt_at=now,
            caused_at=caused_at,
            created_at=now,
        )

    def verification(self, stream: dict[str, Any], state: str | None) -> None:
        """Queue a verification event for ``stream`` (its subject is the stream itself)."""
        fields = {"state": state} if state is not None else {}
        subject = {"format": "opaque", "id": stream["stream_id"]}
        cause = f"verification:{uuid.uuid4().hex}"
        self.store.signals.add(self._row(stream, VERIFICATION, subject, fields, cause, self.clock(), None))
        self._push_wake.set()

    # -- push delivery --------------------------------------------------------------------

    def push_due(self) -> int:
        """POST every due SET of enabled push streams and wait for the answers; the number delivered."""
        done = 0
        while True:
            futures = self._dispatch()
            if not futures:
                return done
            results = [f.result() for f in futures]
            done += sum(results)
            if not any(results):
                return done

    def _dispatch(self) -> list[Future[bool]]:
        """Hand every due SET whose (stream, person) has none in flight to the pool; their futures.

        One person's SETs on a stream go one at a time, in order (a failed one postpones the
        later ones with it); different people's go in parallel, up to ``push_concurrency``.
        """
        with self._push_lock:
            now = self.clock()
            streams = {
                s["stream_id"]: s
                for s in self.store.signals.streams()
                if s["status"] == "enabled" and s["config"]["delivery"]["method"] == PUSH
            }
            futures = []
            held: set[tuple[str, str | None]] = set()
            for row in self.store.signals.due(streams, now, limit=1000):
                key = (row["stream_id"], row["person_id"])
                if key in self._busy or key in held:
                    held.add(key)  # a later SET of someone whose earlier one is still out
                    continue
                self._busy.add(key)
                futures.append(self._pool.submit(self._deliver, streams[row["stream_id"]], row, key))
            return futures

    def _deliver(self, stream: dict[str, Any], row: dict[str, Any], key: tuple[str, str | None]) -> bool:
        try:
            return self._push(stream, row)
        except Exception as exc:  # the audit log or the database failed: said; the SET stays pending, sent again
            log.error("shared signals delivery failed", stream=row["stream_id"], jti=row["jti"], error=repr(exc)[:300])
            return False
        finally:
            with self._push_lock:
                self._busy.discard(key)
            self._push_wake.set()  # the next of this person's SETs may go now

    def _push(self, stream: dict[str, Any], row: dict[str, Any]) -> bool:
        delivery = stream["config"]["delivery"]
        headers = {"Content-Type": SET_CONTENT_TYPE, "Accept": "application/json"}
        if delivery.get("authorization_header"):
            headers["Authorization"] = delivery["authorization_header"]
        elif stream["stream_id"] == f"config-{stream['receiver']}" and stream["receiver"] in self.push_headers:
            headers["Authorization"] = self.push_headers[stream["receiver"]].reveal()
        attempt = row["attempts"] + 1
        status: int | None = None
        retry_after: float | None = None
        try:
            response = self._http.post(delivery["endpoint_url"], content=row["token"], headers=headers)
            status = response.status_code
            detail = _receiver_error(response)
            retry_after = _retry_after(response.headers.get("retry-after"), self.clock())
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}"[:300]
        now = self.clock()
        stored = detail if detail is None or isinstance(detail, str) else json.dumps(detail, sort_keys=True)
        if status is not None and 200 <= status < 300:  # RFC 8935 says 202; some receivers answer 200 or 204
            # The signed log first, then the state (as the engine's recorder does): a crash between
            # sends the SET again (same jti, at-least-once), never leaves a delivery unlogged.
            self._audit(stream, row, "delivered", status, attempt, None)
            self.store.signals.mark(row["id"], status=DELIVERED, attempts=attempt, delivered_at=now, error=None)
            return True
        if status == 400:  # the receiver read the SET and refused it (RFC 8935 section 2.3): final
            self._audit(stream, row, "rejected", status, attempt, detail)
            self.store.signals.mark(row["id"], status=FAILED, attempts=attempt, delivered_at=now, error=stored)
            log.warning("receiver rejected a SET", stream=stream["stream_id"], jti=row["jti"], detail=detail)
            return True
        give_up = now - row["created_at"] > timedelta(hours=self.settings.give_up_after_hours)
        wait = min(self.settings.retry_max_seconds, 0.5 * 2 ** min(attempt, 20))
        wait = max(wait, retry_after or 0)
        values: dict[str, Any] = {
            "attempts": attempt,
            "error": stored,
            "next_attempt_at": now + timedelta(seconds=wait),
        }
        if give_up:
            values.update(status=FAILED, delivered_at=now)
        self._audit(stream, row, "given_up" if give_up else "retrying", status, attempt, detail)
        self.store.signals.mark(row["id"], **values)
        if not give_up:  # this person's later SETs wait for this one: the receiver sees them in order
            self.store.signals.postpone(row["stream_id"], row["person_id"], row["id"], values["next_attempt_at"])
        return False

    def _audit(
        self, stream: dict[str, Any], row: dict[str, Any], result: str, status: int | None, attempt: int, detail: Any
    ) -> None:
        fields = {
            "receiver": stream["receiver"],
            "stream": stream["stream_id"],
            "method": stream["config"]["delivery"]["method"],
            "jti": row["jti"],
            "event_type": row["event_type"],
            "at": self.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "result": result,
            "status_code": status,
            "attempt": attempt,
            "detail": detail,
        }
        if row["person_id"]:  # in that person's evidence; a verification event concerns nobody
            fields["person"] = {"id": row["person_id"]}
        self.engine.record("ssf_delivery", None, fields)

    def acknowledged(self, stream: dict[str, Any], jtis: list[str], errors: dict[str, Any]) -> None:
        """Record a poll receiver's acknowledgements and errors (RFC 8936 ``ack`` and ``setErrs``)."""
        now = self.clock()
        for jti in self.store.signals.acknowledge(stream["stream_id"], jtis, now):
            self._audit(stream, {"jti": jti, **self._meta(jti)}, "acknowledged", None, 1, None)
        for jti, err in errors.items():
            text = json.dumps(err, sort_keys=True)[:300]
            for known in self.store.signals.acknowledge(stream["stream_id"], [jti], now, error=text):
                self._audit(stream, {"jti": known, **self._meta(known)}, "rejected", None, 1, err)

    def _meta(self, jti: str) -> dict[str, Any]:
        for row in self.store.signals.outbox_by_jti([jti]):
            return {"event_type": row["event_type"], "person_id": row["person_id"]}
        return {"event_type": None, "person_id": None}

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Run the feed and the pusher, each in its own thread (signing never waits for a slow receiver)."""
        if self._threads:
            return
        self.configure_streams()
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._feed_loop, name="offboard-ssf-feed", daemon=True),
            threading.Thread(target=self._push_loop, name="offboard-ssf-push", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._push_wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self._pool.shutdown(wait=True)
        self._http.close()

    def wake(self) -> None:
        self._wake.set()
        self._push_wake.set()

    def _feed_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.feed():
                    self._push_wake.set()
            except Exception as exc:  # the database or a bug: say so, try again next round
                log.error("shared signals feed failed", error=f"{type(exc).__name__}: {exc}")
            self._wake.wait(self.settings.feed_seconds)
            self._wake.clear()

    def _push_loop(self) -> None:
        while not self._stop.is_set():
            self._push_wake.clear()
            try:
                self._dispatch()
            except Exception as exc:
                log.error("shared signals delivery failed", error=f"{type(exc).__name__}: {exc}")
            self._push_wake.wait(max(self.settings.feed_seconds, 0.05))


def delivered(requested: list[str] | None) -> list[str]:
    """``events_delivered``: what offboard supports of what was requested (everything when nothing was)."""
    if requested is None:
        return list(EVENTS_SUPPORTED)
    return [e for e in EVENTS_SUPPORTED if e in requested]


def _receiver_error(response: httpx.Response) -> Any:
    if response.status_code in (200, 202):
        return None
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "err" in body:
        return {"err": str(body["err"])[:100], "description": str(body.get("description", ""))[:300]}
    return f"HTTP {response.status_code}"


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value), 86_400.0)
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None
