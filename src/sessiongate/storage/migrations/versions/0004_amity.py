"""Tenants chosen by API key, their keys, and secure-mode auth tokens (amity's networks).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sg_tenant",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secure", sa.Boolean(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_tenant")),
        sa.UniqueConstraint("name", name=op.f("uq_sg_tenant_name")),
    )
    op.create_table(
        "sg_tenant_key",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("hint", sa.String(length=8), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant"], ["sg_tenant.name"], name=op.f("fk_sg_tenant_key_tenant_sg_tenant"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_tenant_key")),
        sa.UniqueConstraint("digest", name=op.f("uq_sg_tenant_key_digest")),
    )
    with op.batch_alter_table("sg_tenant_key", schema=None) as batch_op:
        batch_op.create_index("ix_sg_tenant_key_tenant", ["tenant"], unique=False)
    op.create_table(
        "sg_tenant_auth_token",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("principal_id", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("used_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant"],
            ["sg_tenant.name"],
            name=op.f("fk_sg_tenant_auth_token_tenant_sg_tenant"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_tenant_auth_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_sg_tenant_auth_token_digest")),
    )
    with op.batch_alter_table("sg_tenant_auth_token", schema=None) as batch_op:
        batch_op.create_index("ix_sg_tenant_auth_token_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sg_tenant_auth_token", schema=None) as batch_op:
        batch_op.drop_index("ix_sg_tenant_auth_token_expires")
    op.drop_table("sg_tenant_auth_token")
    with op.batch_alter_table("sg_tenant_key", schema=None) as batch_op:
        batch_op.drop_index("ix_sg_tenant_key_tenant")
    op.drop_table("sg_tenant_key")
    op.drop_table("sg_tenant")
