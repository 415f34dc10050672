"""checklist tasks: the human steps of a case, their owners, due times, closure and reminders

Revision ID: 0007
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("task_id", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.String(length=10), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("asset", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_by", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "task_id", name="uq_task"),
    )
    with op.batch_alter_table("tasks") as batch:
        batch.create_index("ix_tasks_case_id", ["case_id"])
        batch.create_index("ix_tasks_owner", ["owner"])
        batch.create_index("ix_tasks_due_at", ["due_at"])
        batch.create_index("ix_tasks_status", ["status"])


def downgrade() -> None:
    op.drop_table("tasks")
