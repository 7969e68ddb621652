"""Principals carry their realm (who made them) and, outside the gateway's realm, when they were last used.

An amity API key is public, and a registration with it creates any user it names; sharing one namespace of
principals with the dialects that log people in by password, it reached those too. From here a principal an operator
provisions is the ``gateway``'s, and one a registration made is ``amity``'s, the only realm registrations reach.

Principals made before are sorted by what they hold. A registration gives its id as the login, maybe a display name,
and nothing else; an operator may give much more. So a principal is amity's when it is in a tenant made by ``keys
add`` (a network), its login is its id, and it has no password, e-mail, role, permission or auth token; any other is the
gateway's, so no registration can reach it. It may have been one an operator provisioned with nothing: then it can do
no more through amity than it could do before. Amity's get ``last_used_at`` = now, a full lifetime before any sweep.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels = None
depends_on = None

PRINCIPAL = sa.table(
    "sg_principal",
    sa.column("id", GUID(length=16)),
    sa.column("tenant", sa.String),
    sa.column("public_id", sa.String),
    sa.column("login", sa.String),
    sa.column("email", sa.String),
    sa.column("password_hash", sa.String),
    sa.column("roles", JsonB),
    sa.column("permissions", JsonB),
    sa.column("realm", sa.String),
    sa.column("last_used_at", DateTimeUTC(timezone=True)),
)
TENANT = sa.table("sg_tenant", sa.column("name", sa.String))
AUTH_TOKEN = sa.table("sg_auth_token", sa.column("principal_id", GUID(length=16)))


def upgrade() -> None:
    with op.batch_alter_table("sg_principal", schema=None) as batch_op:
        batch_op.add_column(sa.Column("realm", sa.String(length=16), server_default="gateway", nullable=False))
        batch_op.add_column(sa.Column("last_used_at", DateTimeUTC(timezone=True), nullable=True))
        batch_op.create_index("ix_sg_principal_realm_used", ["realm", "last_used_at"], unique=False)
    op.execute(
        sa.update(PRINCIPAL)
        .where(
            PRINCIPAL.c.tenant.in_(sa.select(TENANT.c.name)),
            PRINCIPAL.c.login == PRINCIPAL.c.public_id,
            PRINCIPAL.c.password_hash.is_(None),
            PRINCIPAL.c.email.is_(None),
            _empty(PRINCIPAL.c.roles),
            _empty(PRINCIPAL.c.permissions),
            PRINCIPAL.c.id.not_in(sa.select(AUTH_TOKEN.c.principal_id)),
        )
        .values(realm="amity", last_used_at=datetime.now(UTC))
    )


def downgrade() -> None:
    with op.batch_alter_table("sg_principal", schema=None) as batch_op:
        batch_op.drop_index("ix_sg_principal_realm_used")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("realm")


def _empty(column: sa.ColumnElement[object]) -> sa.ColumnElement[bool]:
    # A list of names, stored as JSON text on SQLite and as jsonb on PostgreSQL; absent counts as empty.
    if op.get_bind().dialect.name == "postgresql":
        as_text = sa.cast(column, sa.Text)
        return sa.or_(column.is_(None), as_text.in_(["[]", "null"]))
    return sa.or_(column.is_(None), sa.func.json_array_length(column) == 0)
