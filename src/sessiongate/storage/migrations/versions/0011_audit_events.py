"""Audit events (``sessiongate audit``, the admin API's ``audit-events``): who did what to which session, swept after
the retention.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sg_audit_event",
        sa.Column("id", GUID(length=16), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=160), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=True),
        sa.Column("dialect", sa.String(length=32), nullable=True),
        sa.Column("principal_id", sa.String(length=128), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=256), nullable=True),
        sa.Column("detail", JsonB, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sg_audit_event")),
    )
    op.create_index("ix_sg_audit_event_created", "sg_audit_event", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_sg_audit_event_created", table_name="sg_audit_event")
    op.drop_table("sg_audit_event")
