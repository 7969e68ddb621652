"""Drop two indexes of ``sg_session`` that the partial indexes of live sessions (0003) made redundant.

Every query by tenant and creation time, or by tenant and principal, also asks for ``revoked_at IS NULL`` and reads
``ix_sg_session_live_created`` or ``ix_sg_session_live_principal``; the two full indexes were only written, on every
create, for nobody (a fifth of SQLite's time per insert).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None

REDUNDANT = {
    "ix_sg_session_tenant_created": ["tenant", "created_at", "id"],
    "ix_sg_session_tenant_principal": ["tenant", "principal_id"],
}


def upgrade() -> None:
    for name in REDUNDANT:
        op.drop_index(name, table_name="sg_session")


def downgrade() -> None:
    for name, columns in REDUNDANT.items():
        op.create_index(name, "sg_session", columns, unique=False)
