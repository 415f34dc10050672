"""account inventory, inventory syncs and notices

Revision ID: 0003
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inventory_accounts",
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("account_id", sa.String(length=400), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("person_id", sa.String(length=320), nullable=True),
        sa.Column("matched_by", sa.String(length=32), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("system", "account_id"),
    )
    with op.batch_alter_table("inventory_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inventory_accounts_person_id"), ["person_id"], unique=False)

    op.create_table(
        "inventory_syncs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("accounts", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("inventory_syncs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_inventory_syncs_system"), ["system"], unique=False)

    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("end_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "kind", "end_date", name="uq_notice"),
    )


def downgrade() -> None:
    op.drop_table("notices")
    with op.batch_alter_table("inventory_syncs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inventory_syncs_system"))

    op.drop_table("inventory_syncs")
    with op.batch_alter_table("inventory_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_inventory_accounts_person_id"))

    op.drop_table("inventory_accounts")
