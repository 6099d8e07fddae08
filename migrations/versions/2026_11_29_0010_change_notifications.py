"""Every change to a principal or a recording is announced to the servers (PostgreSQL).

Each row of users, devices and recordings that is updated or deleted sends its id on
the channel `noctis_changes` when its transaction commits (pg_notify; ids repeated in
one transaction arrive once). Ingest updates the device's row with every batch, so a
device's new epochs are announced as its id. Workers listen (sync_server.changes) and
keep what they computed from these rows, such as a token's principal or a stored
night's answer, only until its ids are announced. Triggers rather than application code
send them, so that every writer is heard: other workers and replicas, the CLI, jobs.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHANNEL = "noctis_changes"  # sync_server.changes.CHANNEL
TABLES = ("users", "devices", "recordings")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # on SQLite nothing is announced, and the servers keep nothing
    op.execute(
        f"""
        CREATE FUNCTION noctis_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', OLD.id::text);
            RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_announce_change AFTER UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION noctis_announce_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_announce_change ON {table}")
    op.execute("DROP FUNCTION noctis_announce_change()")
