"""audit cosignatures: the witnesses' cosignatures of each checkpoint of the shared (PostgreSQL) audit log

Revision ID: 0011
Revises: 0006, 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = ("0006", "0010")  # audit_checkpoints comes from 0006
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_checkpoints", sa.Column("cosignatures", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_checkpoints", "cosignatures")
