"""The schema of the state database: every table, in one ``metadata``.

Alembic builds and upgrades it (``state/migrations``); the tests compare the migrated
database with these tables. Only ``offboard.state`` reads or writes them.
"""

from __future__ import annotations

import sqlalchemy as sa

from ..models import CaseStatus, FollowUpStatus

__all__ = [
    "metadata",
    "cases",
    "actions",
    "followups",
    "events",
    "hr_events",
    "hr_deliveries",
    "inventory_accounts",
    "inventory_syncs",
    "notices",
    "tasks",
    "case_leases",
    "original_states",
    "rate_limits",
    "audit_entries",
    "audit_checkpoints",
    "audit_seals",
    "ssf_streams",
    "ssf_subjects",
    "ssf_outbox",
    "ssf_cursor",
]

metadata = sa.MetaData()

# -- cases, their actions, follow-ups and events --------------------------------------

cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.String(320), nullable=False, index=True),
    sa.Column("person", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("trigger", sa.String(32), nullable=False),
    sa.Column("policy", sa.String(100), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("effective_at", sa.DateTime(timezone=True)),
    sa.Column("termination_at", sa.DateTime(timezone=True)),
    sa.Column("source_event", sa.String(200)),
)
# One open case per person: a webhook and a sweep arriving together cannot both act.
sa.Index(
    "uq_one_running_case_per_person",
    cases.c.person_id,
    unique=True,
    sqlite_where=cases.c.status == CaseStatus.RUNNING.value,
    postgresql_where=cases.c.status == CaseStatus.RUNNING.value,
)

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("system", sa.String(100), nullable=False),
    sa.Column("account_id", sa.String(400), nullable=False),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("params", sa.Text, nullable=False, default="{}"),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("receipt", sa.Text),
    sa.Column("verification", sa.Text),
    sa.Column("error", sa.Text),
    sa.Column("requested_at", sa.DateTime(timezone=True)),
    sa.Column("responded_at", sa.DateTime(timezone=True)),
    sa.Column("verified_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("case_id", "system", "account_id", "kind", name="uq_action"),
)

followups = sa.Table(
    "followups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, default=FollowUpStatus.SCHEDULED.value),
    sa.Column("done_case", sa.String(40)),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), index=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# -- HR events received by the server ---------------------------------------------------

hr_events = sa.Table(
    "hr_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("event_id", sa.String(200), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("person_ref", sa.String(320), nullable=False),
    sa.Column("person_id", sa.String(320), index=True),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("body_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("due_at", sa.DateTime(timezone=True), index=True),
    sa.Column("case_id", sa.String(40)),
    sa.Column("detail", sa.Text, nullable=False, default=""),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("key", name="uq_hr_events_key"),
)

hr_deliveries = sa.Table(
    "hr_deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(300), primary_key=True),  # source:webhook-id, for replay refusal
    sa.Column("event_key", sa.String(300), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# -- the account inventory and the managers' notices --------------------------------------

inventory_accounts = sa.Table(
    "inventory_accounts",
    metadata,
    sa.Column("system", sa.String(100), primary_key=True),
    sa.Column("account_id", sa.String(400), primary_key=True),
    sa.Column("name", sa.String(400), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("person_id", sa.String(320), index=True),
    sa.Column("matched_by", sa.String(32)),
    sa.Column("attributes", sa.Text, nullable=False, default="{}"),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
)

inventory_syncs = sa.Table(
    "inventory_syncs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("system", sa.String(100), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("accounts", sa.Integer, nullable=False, default=0),
    sa.Column("matched", sa.Integer, nullable=False, default=0),
    sa.Column("removed", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
)

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("person_id", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("end_date", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recipients", sa.Text, nullable=False, default="[]"),
    sa.UniqueConstraint("person_id", "kind", "end_date", name="uq_notice"),
)

# -- checklist tasks ----------------------------------------------------------------------

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(40), sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("task_id", sa.String(100), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("blocking", sa.Boolean, nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("due_date", sa.String(10), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("asset", sa.Text),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("closed_by", sa.String(200)),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("reminded_due_at", sa.DateTime(timezone=True)),
    sa.Column("reminded_overdue_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("case_id", "task_id", name="uq_task"),
)

# -- case leases: which process is running a case, while its heartbeat lasts ---------------

case_leases = sa.Table(
    "case_leases",
    metadata,
    sa.Column("case_id", sa.String(40), sa.ForeignKey("cases.id"), primary_key=True),
    sa.Column("owner", sa.String(100), nullable=False),  # one id per engine: host, pid and a random part
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

# -- original states: what an account was before offboard's first write to it ----------------

# Read before the first write of the first case that touched the account, inserted once and never
# overwritten: a re-run or a later case that finds offboard's own change still undoes to this.
original_states = sa.Table(
    "original_states",
    metadata,
    sa.Column("system", sa.String(100), primary_key=True),
    sa.Column("account_id", sa.String(400), primary_key=True),
    sa.Column("kind", sa.String(40), primary_key=True),
    sa.Column("case_id", sa.String(40), nullable=False),  # the case that read it
    sa.Column("before", sa.Text, nullable=False),  # JSON, the shape of Receipt.before
    sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
)

# -- distributed execution: shared rate limits and the shared audit log --------------------

rate_limits = sa.Table(
    "rate_limits",
    metadata,
    sa.Column("system", sa.String(100), primary_key=True),
    sa.Column("tat", sa.Float, nullable=False, default=0.0),  # GCRA: theoretical arrival time, epoch seconds
    sa.Column("paused_until", sa.Float, nullable=False, default=0.0),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("line", sa.LargeBinary, nullable=False),  # the canonical JSON line, without its newline
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("note", sa.Text, nullable=False),  # the signed C2SP checkpoint
    sa.Column("cosignatures", sa.Text, nullable=True),  # witnesses' cosignature lines (audit.witnesses)
)

# Every checkpoint the writer ever signed, kept outside the log's directory: a writer that finds
# its entries or checkpoint files changed refuses to sign again (see audit/_history.py).
audit_seals = sa.Table(
    "audit_seals",
    metadata,
    sa.Column("origin", sa.String(400), primary_key=True),
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.String(44), nullable=False),  # base64 of the RFC 6962 root
    sa.Column("note", sa.Text, nullable=False),  # the signed checkpoint
    sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
)

# -- Shared Signals (offboard.signals): streams receivers created, their subjects, the outbox --------

ssf_streams = sa.Table(
    "ssf_streams",
    metadata,
    sa.Column("stream_id", sa.String(64), primary_key=True),
    sa.Column("receiver", sa.String(100), nullable=False, index=True),  # the server.signals.receivers name
    sa.Column("config", sa.Text, nullable=False),  # JSON: the receiver-supplied properties
    sa.Column("status", sa.String(16), nullable=False),  # enabled | paused | disabled
    sa.Column("reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("verified_at", sa.DateTime(timezone=True)),  # the last verification request
)

ssf_subjects = sa.Table(
    "ssf_subjects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stream_id", sa.String(64), nullable=False, index=True),
    sa.Column("subject", sa.Text, nullable=False),  # canonical JSON of the RFC 9493 subject identifier
    sa.UniqueConstraint("stream_id", "subject", name="uq_ssf_subject"),
)

# Every SET a stream owes its receiver, signed once: a redelivery sends the same bytes (same jti).
ssf_outbox = sa.Table(
    "ssf_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stream_id", sa.String(64), nullable=False, index=True),
    sa.Column("jti", sa.String(64), nullable=False),
    sa.Column("dedupe", sa.String(300), nullable=False),  # one SET per (stream, cause, event type)
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("person_id", sa.String(320)),
    sa.Column("token", sa.Text, nullable=False),  # the signed SET (compact JWS)
    sa.Column("status", sa.String(16), nullable=False, index=True),  # pending | delivered | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("caused_at", sa.DateTime(timezone=True), nullable=False),  # when the verified change happened
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("jti", name="uq_ssf_outbox_jti"),
    sa.UniqueConstraint("stream_id", "dedupe", name="uq_ssf_outbox_dedupe"),
)

# How far the transmitter has read the ``events`` table (one row, name "events").
ssf_cursor = sa.Table(
    "ssf_cursor",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)
