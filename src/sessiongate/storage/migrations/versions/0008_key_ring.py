"""The key ring: generated keys start signing (or digesting) at ``activates_at`` and stop at ``retires_at``.

Keys kept before have neither, which reads as "in use since made, until retired": they keep working as they did.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sg_secret", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activates_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("retires_at", DateTimeUTC(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sg_secret", schema=None) as batch_op:
        batch_op.drop_column("retires_at")
        batch_op.drop_column("activates_at")
