"""Sessions and server-generated secrets.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sg_secret",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_secret")),
        sa.UniqueConstraint("name", name=op.f("uq_sg_secret_name")),
    )
    op.create_table(
        "sg_session",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("principal_id", sa.String(length=128), nullable=True),
        sa.Column("subject", sa.String(length=256), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("token_digest", sa.String(length=64), nullable=True),
        sa.Column("reuse_key", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=256), nullable=True),
        sa.Column("device_name", sa.String(length=256), nullable=True),
        sa.Column("device_kind", sa.String(length=32), nullable=True),
        sa.Column("device_model", sa.String(length=128), nullable=True),
        sa.Column("device_sdk_version", sa.String(length=64), nullable=True),
        sa.Column("device_env", sa.String(length=32), nullable=True),
        sa.Column("last_seen_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("absolute_expires_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("revoked_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("attributes", JsonB, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_session")),
        sa.UniqueConstraint("reuse_key", name=op.f("uq_sg_session_reuse_key")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_sg_session_token_digest")),
    )
    with op.batch_alter_table("sg_session", schema=None) as batch_op:
        batch_op.create_index("ix_sg_session_expires", ["expires_at"], unique=False)
        batch_op.create_index("ix_sg_session_tenant_created", ["tenant", "created_at", "id"], unique=False)
        batch_op.create_index("ix_sg_session_tenant_principal", ["tenant", "principal_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sg_session", schema=None) as batch_op:
        batch_op.drop_index("ix_sg_session_tenant_principal")
        batch_op.drop_index("ix_sg_session_tenant_created")
        batch_op.drop_index("ix_sg_session_expires")

    op.drop_table("sg_session")
    op.drop_table("sg_secret")
