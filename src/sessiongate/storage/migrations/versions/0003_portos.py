"""PORTOS: refresh tokens, devices, and partial indexes of live sessions for listings.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

LIVE = "revoked_at IS NULL"
LISTING_INDEXES = {
    "ix_sg_session_live_created": ["tenant", "created_at", "id", "expires_at"],
    "ix_sg_session_live_expires": ["tenant", "expires_at", "id"],
    "ix_sg_session_live_principal": ["tenant", "principal_id", "created_at", "id", "expires_at"],
}


def upgrade() -> None:
    op.create_table(
        "sg_refresh_token",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("family_id", sa.String(length=64), nullable=False),
        sa.Column("session_id", GUID(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("rotated_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("revoked_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_refresh_token")),
        sa.UniqueConstraint("digest", name=op.f("uq_sg_refresh_token_digest")),
    )
    op.create_index("ix_sg_refresh_token_family", "sg_refresh_token", ["family_id"], unique=False)
    op.create_index("ix_sg_refresh_token_expires", "sg_refresh_token", ["expires_at"], unique=False)
    op.create_table(
        "sg_device",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("preferences", JsonB, nullable=False),
        sa.Column("settings", JsonB, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_device")),
        sa.UniqueConstraint("tenant", "name", name="uq_sg_device_tenant_name"),
    )
    for name, columns in LISTING_INDEXES.items():
        op.create_index(
            name, "sg_session", columns, unique=False, sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE)
        )


def downgrade() -> None:
    for name in LISTING_INDEXES:
        op.drop_index(name, table_name="sg_session")
    op.drop_table("sg_device")
    op.drop_index("ix_sg_refresh_token_expires", table_name="sg_refresh_token")
    op.drop_index("ix_sg_refresh_token_family", table_name="sg_refresh_token")
    op.drop_table("sg_refresh_token")
