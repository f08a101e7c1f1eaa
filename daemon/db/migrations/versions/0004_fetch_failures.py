"""Fetch failures on messages, so failed fetches are seen and fetched again later.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import daemon.db.models

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("fetch_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("fetch_failed_at", daemon.db.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_fetch_failed_at"), ["fetch_failed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_fetch_failed_at"))
        batch_op.drop_column("fetch_failed_at")
        batch_op.drop_column("fetch_attempts")
