"""original states: an account's before-state, read before offboard's first write to it, kept once

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "original_states",
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=400), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", "account_id", "kind"),
    )


def downgrade() -> None:
    op.drop_table("original_states")
