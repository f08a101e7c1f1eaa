"""Polling: schedule and leases per enterprise, watermarks per provider, database document store.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import daemon.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = daemon.db.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "poll_state",
        sa.Column("enterprise_id", BigId, nullable=False),
        sa.Column("next_poll_at", UTC, nullable=False),
        sa.Column("lease_token", sa.String(length=36), nullable=True),
        sa.Column("leased_until", UTC, nullable=True),
        sa.Column("last_attempt_at", UTC, nullable=True),
        sa.Column("last_success_at", UTC, nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"], name=op.f("fk_poll_state_enterprise_id_enterprises"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("enterprise_id", name=op.f("pk_poll_state")),
    )
    op.create_index("ix_poll_state_due", "poll_state", ["next_poll_at"])
    op.create_table(
        "poll_watermarks",
        sa.Column("enterprise_id", BigId, nullable=False),
        sa.Column("provider_id", sa.String(length=100), nullable=False),
        sa.Column("received_until", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"],
                                name=op.f("fk_poll_watermarks_enterprise_id_enterprises"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("enterprise_id", "provider_id", name=op.f("pk_poll_watermarks")),
    )
    op.create_table(
        "document_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_document_blobs")),
    )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("fetched_at", UTC, nullable=True))
        batch_op.add_column(sa.Column("fetch_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("fetch_error")
        batch_op.drop_column("fetched_at")
    op.drop_table("document_blobs")
    op.drop_table("poll_watermarks")
    op.drop_index("ix_poll_state_due", table_name="poll_state")
    op.drop_table("poll_state")
