"""portos: its devices (``sg_device``), made here or adopted from the core.

The first revision of portos's own branch. Until issue 14 the core's migration 0003 made this table; a database
migrated since then holds it, with the devices operators provisioned. So this revision takes an existing ``sg_device``
over as it is, rows and all, and makes it only where it is absent: a database made since, on which portos is enabled
for the first time. Either way the table is the same (the one 0003 made). Undoing the revision drops it, with its rows.

Revision ID: portos_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sessiongate.dialect import columns

revision = "portos_0001"
down_revision: str | None = None
branch_labels = ("portos",)
depends_on = None
needs_core = "0013"

TABLE = "sg_device"


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table(TABLE):
        return  # made by the core's 0003 before portos owned it: kept as it is, with its rows
    op.create_table(
        TABLE,
        sa.Column("id", columns.GUID(length=16), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("description", sa.String(length=256), nullable=True),
        sa.Column("preferences", columns.JsonB, nullable=False),
        sa.Column("settings", columns.JsonB, nullable=False),
        sa.Column("sa_orm_sentinel", sa.Integer(), nullable=True),
        sa.Column("created_at", columns.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", columns.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sg_device"),
        sa.UniqueConstraint("tenant", "name", name="uq_sg_device_tenant_name"),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
