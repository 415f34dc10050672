"""shared signals (SSF): streams, their subjects, the SET outbox and the transmitter's cursor

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssf_streams",
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("receiver", sa.String(length=100), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("stream_id"),
    )
    op.create_index("ix_ssf_streams_receiver", "ssf_streams", ["receiver"])
    op.create_table(
        "ssf_subjects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream_id", "subject", name="uq_ssf_subject"),
    )
    op.create_index("ix_ssf_subjects_stream_id", "ssf_subjects", ["stream_id"])
    op.create_table(
        "ssf_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("dedupe", sa.String(length=300), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("person_id", sa.String(length=320), nullable=True),
        sa.Column("token", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("caused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("jti", name="uq_ssf_outbox_jti"),
        sa.UniqueConstraint("stream_id", "dedupe", name="uq_ssf_outbox_dedupe"),
    )
    op.create_index("ix_ssf_outbox_stream_id", "ssf_outbox", ["stream_id"])
    op.create_index("ix_ssf_outbox_status", "ssf_outbox", ["status"])
    op.create_table(
        "ssf_cursor",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("ssf_cursor")
    op.drop_table("ssf_outbox")
    op.drop_table("ssf_subjects")
    op.drop_table("ssf_streams")
