"""Tenant keys end: a key can be revoked or given an expiry (``keys revoke``, ``keys expire``), and its last use is
noted (trailing by at most a minute), for listings.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

COLUMNS = ("revoked_at", "expires_at", "last_used_at")


def upgrade() -> None:
    with op.batch_alter_table("sg_tenant_key") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, DateTimeUTC(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sg_tenant_key") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
