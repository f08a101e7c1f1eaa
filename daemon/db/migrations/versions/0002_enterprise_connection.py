"""Enterprise connection: service-provider access, key fingerprint, last successful connection.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import daemon.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enterprises") as batch_op:
        batch_op.add_column(sa.Column("access_via_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                                      nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_enterprises_access_via_id_enterprises"), "enterprises",
                                    ["access_via_id"], ["id"], ondelete="SET NULL")
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.add_column(sa.Column("key_fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("connected_at", daemon.db.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as batch_op:
        batch_op.drop_column("connected_at")
        batch_op.drop_column("key_fingerprint")
    with op.batch_alter_table("enterprises") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_enterprises_access_via_id_enterprises"), type_="foreignkey")
        batch_op.drop_column("access_via_id")
