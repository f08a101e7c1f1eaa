"""OAuth2 token pairs per provider connection (Exact Online: host, app and user, shared by every
enterprise connected with that user; Ponto later), encrypted at rest; providers' recent error
answers, counted by every worker before calling.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import daemon.db.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oauth_tokens",
        sa.Column("id", _ID, nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("token_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("access_expires_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_tokens")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_oauth_tokens_provider_subject")),
        sqlite_autoincrement=True,  # ids never reused: token blobs are bound to them
    )
    op.create_table(
        "provider_call_errors",
        sa.Column("id", _ID, nullable=False),
        sa.Column("provider", sa.String(length=50), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("occurred_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_call_errors")),
    )
    with op.batch_alter_table("provider_call_errors") as batch_op:
        batch_op.create_index("ix_provider_call_errors_key", ["provider", "key", "occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("provider_call_errors") as batch_op:
        batch_op.drop_index("ix_provider_call_errors_key")
    op.drop_table("provider_call_errors")
    op.drop_table("oauth_tokens")
