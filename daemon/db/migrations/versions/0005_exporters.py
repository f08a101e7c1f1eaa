"""Per-enterprise exporter configuration (the exporter plugins' settings, secrets encrypted).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import daemon.db.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exporter_configs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("enterprise_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("exporter", sa.String(length=100), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", daemon.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["enterprise_id"], ["enterprises.id"],
                                name=op.f("fk_exporter_configs_enterprise_id_enterprises"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exporter_configs")),
        sa.UniqueConstraint("enterprise_id", "exporter", "target",
                            name=op.f("uq_exporter_configs_enterprise_id_exporter_target")),
    )
    with op.batch_alter_table("exporter_configs") as batch_op:
        batch_op.create_index(batch_op.f("ix_exporter_configs_enterprise_id"), ["enterprise_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("exporter_configs") as batch_op:
        batch_op.drop_index(batch_op.f("ix_exporter_configs_enterprise_id"))
    op.drop_table("exporter_configs")
