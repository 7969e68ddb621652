"""SQLite: each tenant's count of unrevoked sessions, kept by triggers, so a listing's total reads no 100 000 rows.

PORTOS's ``GET /sessions`` answers ``totalCount`` (every match) with every page. Counting a tenant's live sessions
walked the whole live-expiry index, one entry per session: ~5 ms of SQLite per request at 100 000 sessions, ~60 %
of the listing's cost, and it bounded the listing to ~100 requests a second. ``sg_tally`` holds, per
tenant, how many of its sessions are not revoked, kept in the same transaction as every change by triggers, whoever
makes it (the store, the sweeper, the operators' CLI, another process). A listing's live count is that number less
the unrevoked sessions already expired, which the sweeper deletes: a short range of the same index
(``SqlSessionStore.list``). Exact, in one statement's snapshot, whatever was committed before it.

An insert now also updates its tenant's row (a few microseconds on the writer). PostgreSQL gets neither the table
nor the triggers: there every create of a tenant would queue on that one row's lock until its commit.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None

_ADD = (
    "INSERT INTO sg_tally (tenant, unrevoked) SELECT NEW.tenant, 1 WHERE NEW.revoked_at IS NULL "
    "ON CONFLICT (tenant) DO UPDATE SET unrevoked = unrevoked + 1"
)
_REMOVE = "UPDATE sg_tally SET unrevoked = unrevoked - 1 WHERE tenant = OLD.tenant AND OLD.revoked_at IS NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE sg_tally (tenant VARCHAR(64) NOT NULL PRIMARY KEY, unrevoked INTEGER NOT NULL) WITHOUT ROWID"
    )
    op.execute(
        "INSERT INTO sg_tally (tenant, unrevoked) "
        "SELECT tenant, count(*) FROM sg_session WHERE revoked_at IS NULL GROUP BY tenant"
    )
    op.execute(f"CREATE TRIGGER sg_session_tally_inserted AFTER INSERT ON sg_session BEGIN {_ADD}; END")
    op.execute(f"CREATE TRIGGER sg_session_tally_deleted AFTER DELETE ON sg_session BEGIN {_REMOVE}; END")
    # An upsert that replaces a dead holder of a reuse key is an UPDATE, and fires this one (not the insert's).
    op.execute(
        "CREATE TRIGGER sg_session_tally_updated AFTER UPDATE OF tenant, revoked_at ON sg_session "
        "WHEN OLD.tenant IS NOT NEW.tenant OR (OLD.revoked_at IS NULL) IS NOT (NEW.revoked_at IS NULL) "
        f"BEGIN {_REMOVE}; {_ADD}; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS sg_session_tally_updated")
    op.execute("DROP TRIGGER IF EXISTS sg_session_tally_deleted")
    op.execute("DROP TRIGGER IF EXISTS sg_session_tally_inserted")
    op.execute("DROP TABLE IF EXISTS sg_tally")
