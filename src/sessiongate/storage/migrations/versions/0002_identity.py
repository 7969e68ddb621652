"""Identity: principals, their auth tokens, and login failures for throttling.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sg_principal",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("public_id", sa.String(length=128), nullable=False),
        sa.Column("login", sa.String(length=256), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("roles", JsonB, nullable=False),
        sa.Column("permissions", JsonB, nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_principal")),
        sa.UniqueConstraint("tenant", "login", name="uq_sg_principal_tenant_login"),
        sa.UniqueConstraint("tenant", "public_id", name="uq_sg_principal_tenant_public_id"),
    )
    op.create_table(
        "sg_auth_token",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("principal_id", GUID(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["sg_principal.id"],
            name=op.f("fk_sg_auth_token_principal_id_sg_principal"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_auth_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_sg_auth_token_digest")),
    )
    op.create_index("ix_sg_auth_token_principal", "sg_auth_token", ["principal_id"], unique=False)
    op.create_table(
        "sg_login_failure",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_started_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("locked_until", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_login_failure")),
        sa.UniqueConstraint("key", name=op.f("uq_sg_login_failure_key")),
    )
    op.create_index("ix_sg_login_failure_window", "sg_login_failure", ["window_started_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sg_login_failure_window", table_name="sg_login_failure")
    op.drop_table("sg_login_failure")
    op.drop_index("ix_sg_auth_token_principal", table_name="sg_auth_token")
    op.drop_table("sg_auth_token")
    op.drop_table("sg_principal")
