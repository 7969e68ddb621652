"""memo: a note per session (``memo_note``).

The first revision of memo's own branch: ``branch_labels`` names the branch after the dialect, every revision id starts
with ``memo_``, and ``needs_core`` names the core revision this table needs (the gateway migrates the core first).

Revision ID: memo_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "memo_0001"
down_revision: str | None = None
branch_labels = ("memo",)
depends_on = None
needs_core = "0013"


def upgrade() -> None:
    op.create_table(
        "memo_note",
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_memo_note"),
    )


def downgrade() -> None:
    op.drop_table("memo_note")
