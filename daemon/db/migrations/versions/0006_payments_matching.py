"""Payment request versions (manual edits re-emit payment.requested) and bank-transaction match state.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payment_requests") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("bank_transactions") as batch_op:
        batch_op.add_column(sa.Column("match_state", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("match_note", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_bank_transactions_match_state"), ["match_state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bank_transactions") as batch_op:
        batch_op.drop_index(batch_op.f("ix_bank_transactions_match_state"))
        batch_op.drop_column("match_note")
        batch_op.drop_column("match_state")
    with op.batch_alter_table("payment_requests") as batch_op:
        batch_op.drop_column("version")
