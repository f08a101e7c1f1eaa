"""Payment matches: which bank movements pay (or may pay) which payment requests, many to many.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import daemon.db.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payment_matches",
        sa.Column("id", _ID, nullable=False),
        sa.Column("payment_request_id", _ID, nullable=False),
        sa.Column("bank_transaction_id", _ID, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("matched_by", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["payment_request_id"], ["payment_requests.id"],
                                name=op.f("fk_payment_matches_payment_request_id_payment_requests"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["bank_transaction_id"], ["bank_transactions.id"],
                                name=op.f("fk_payment_matches_bank_transaction_id_bank_transactions"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_matches")),
        sa.UniqueConstraint("payment_request_id", "bank_transaction_id",
                            name=op.f("uq_payment_matches_payment_request_id_bank_transaction_id")),
    )
    with op.batch_alter_table("payment_matches") as batch_op:
        batch_op.create_index(batch_op.f("ix_payment_matches_payment_request_id"), ["payment_request_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_payment_matches_bank_transaction_id"), ["bank_transaction_id"],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payment_matches") as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_matches_bank_transaction_id"))
        batch_op.drop_index(batch_op.f("ix_payment_matches_payment_request_id"))
    op.drop_table("payment_matches")
