"""PORTOS: refresh tokens, and partial indexes of live sessions for listings.

This revision used to make portos's devices too (``sg_device``). They are the portos dialect's now (issue 14): its own
migration branch (``sessiongate_portos/migrations``) makes the table, or adopts it, rows and all, where this revision
made it before. So a new database gets it only with portos enabled, and undoing this revision drops it only when it is
still the one this revision made: present, and not taken over by portos's branch (no ``portos_`` row in the version
table). A database that portos's branch holds keeps it until that branch is undone.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC
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
    for name, columns in LISTING_INDEXES.items():
        op.create_index(
            name, "sg_session", columns, unique=False, sqlite_where=sa.text(LIVE), postgresql_where=sa.text(LIVE)
        )


def downgrade() -> None:
    for name in LISTING_INDEXES:
        op.drop_index(name, table_name="sg_session")
    if _made_here():
        op.drop_table("sg_device")
    op.drop_index("ix_sg_refresh_token_expires", table_name="sg_refresh_token")
    op.drop_index("ix_sg_refresh_token_family", table_name="sg_refresh_token")
    op.drop_table("sg_refresh_token")


def _made_here() -> bool:
    """Whether ``sg_device`` is the table this revision made before portos's branch took devices over: it is there,
    and no row of the version table is of that branch (those of dialects not enabled, which a downgrade sets aside
    while it runs, counted: ``storage.database.SET_ASIDE``)."""
    if not sa.inspect(op.get_bind()).has_table("sg_device"):
        return False
    context = op.get_context()
    aside = context.config.attributes.get("sessiongate.set_aside", ()) if context.config is not None else ()
    return not any(row.startswith("portos_") for row in (*context.get_current_heads(), *aside))
