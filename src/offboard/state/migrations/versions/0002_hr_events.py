"""HR events received by the webhook intake, and delivery ids seen (replay refusal)

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hr_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("person_ref", sa.String(length=320), nullable=False),
        sa.Column("person_id", sa.String(length=320), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("case_id", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("key", name="uq_hr_events_key"),
    )
    with op.batch_alter_table("hr_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hr_events_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_hr_events_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_hr_events_due_at"), ["due_at"], unique=False)

    op.create_table(
        "hr_deliveries",
        sa.Column("delivery_id", sa.String(length=300), nullable=False),
        sa.Column("event_key", sa.String(length=300), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id"),
    )
    with op.batch_alter_table("hr_deliveries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hr_deliveries_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hr_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hr_deliveries_received_at"))
    op.drop_table("hr_deliveries")
    with op.batch_alter_table("hr_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hr_events_due_at"))
        batch_op.drop_index(batch_op.f("ix_hr_events_status"))
        batch_op.drop_index(batch_op.f("ix_hr_events_person_id"))
    op.drop_table("hr_events")
