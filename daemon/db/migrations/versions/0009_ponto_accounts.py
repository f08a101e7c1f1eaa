"""Bank accounts linked through Ponto Connect (enterprise, Ponto account id, IBAN, sync cursor and
schedule), the ids of accepted Ponto webhooks (replay protection), and an index to find the same
movement stored by another source (CODA vs Ponto).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import daemon.db.models

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("bank_transactions") as batch_op:
        batch_op.create_index("ix_bank_transactions_movement", ["account_iban", "booking_date", "amount"],
                              unique=False)
    op.create_table(
        "ponto_accounts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("enterprise_id", _ID, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("newest_execution_date", sa.Date(), nullable=True),
        sa.Column("last_synced_at", daemon.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_sync_status", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_sync_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"],
                                name=op.f("fk_ponto_accounts_enterprise_id_enterprises"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ponto_accounts")),
        sa.UniqueConstraint("account_id", name=op.f("uq_ponto_accounts_account_id")),
    )
    with op.batch_alter_table("ponto_accounts") as batch_op:
        batch_op.create_index(batch_op.f("ix_ponto_accounts_enterprise_id"), ["enterprise_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ponto_accounts_next_sync_at"), ["next_sync_at"], unique=False)
    op.create_table(
        "ponto_webhooks_seen",
        sa.Column("jti", sa.String(length=100), nullable=False),
        sa.Column("seen_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_ponto_webhooks_seen")),
    )
    with op.batch_alter_table("ponto_webhooks_seen") as batch_op:
        batch_op.create_index(batch_op.f("ix_ponto_webhooks_seen_seen_at"), ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_table("ponto_webhooks_seen")
    with op.batch_alter_table("ponto_accounts") as batch_op:
        batch_op.drop_index(batch_op.f("ix_ponto_accounts_next_sync_at"))
        batch_op.drop_index(batch_op.f("ix_ponto_accounts_enterprise_id"))
    op.drop_table("ponto_accounts")
    with op.batch_alter_table("bank_transactions") as batch_op:
        batch_op.drop_index("ix_bank_transactions_movement")
