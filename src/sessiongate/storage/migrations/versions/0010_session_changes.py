"""SQLite: a log of the sessions each commit changed, so a kept row is dropped only when its own session changes.

Every process keeps the rows it looked up (``storage.read_cache``) until a commit changes them. Until now it could
only tell *that* something committed (``PRAGMA data_version``), so any commit at all, a create included, emptied what
it kept, and under load with writes landing almost every validate read the database again. Two triggers now write
the id of every session an ``UPDATE`` or a ``DELETE`` touches into ``sg_session_change``, in the same transaction as
the change itself, whoever makes it (the store, the refresh tokens, the identity service, the operators' CLI, another
process). When ``data_version`` moves, a process reads the entries after the last one it read and drops only those
sessions' rows. An ``INSERT`` needs no entry: a new session was never kept. The sweeper trims the log
(``SqlSessionStore.delete_expired``); a process that finds entries it never read trimmed away forgets everything.

PostgreSQL keeps nothing between requests, so it gets neither the table nor the triggers.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    # AUTOINCREMENT: a sequence number is never used twice, even after the newest entries are deleted, and (SQLite
    # writing one transaction at a time) the numbers follow the order of the commits.
    op.execute("CREATE TABLE sg_session_change (seq INTEGER PRIMARY KEY AUTOINCREMENT, session_id BINARY(16) NOT NULL)")
    op.execute(
        "CREATE TRIGGER sg_session_updated AFTER UPDATE ON sg_session "
        "BEGIN INSERT INTO sg_session_change (session_id) VALUES (OLD.id); END"
    )
    op.execute(
        "CREATE TRIGGER sg_session_deleted AFTER DELETE ON sg_session "
        "BEGIN INSERT INTO sg_session_change (session_id) VALUES (OLD.id); END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS sg_session_deleted")
    op.execute("DROP TRIGGER IF EXISTS sg_session_updated")
    op.execute("DROP TABLE IF EXISTS sg_session_change")
