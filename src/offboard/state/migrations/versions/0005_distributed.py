"""shared rate limits, and procrastinate's job tables on PostgreSQL

Revision ID: 0005
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("system"),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        from procrastinate.schema import SchemaManager
    except ImportError:  # embedded use of PostgreSQL without the [postgres] extra: no workers, no job tables
        return
    exists = bind.execute(sa.text("select to_regclass('procrastinate_jobs')")).scalar()
    if exists is None:
        bind.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))


def downgrade() -> None:
    op.drop_table("rate_limits")
