"""Activations say what they were, and are announced as they commit.

`model_activations.action` is bootstrap, promote or rollback: a rollback walks back
through the promotions (sync_server.models.lifecycle.rollback), which the table could
not tell from its reasons alone. On PostgreSQL each new activation announces
`model_activations` on `noctis_changes`, and every worker loads the new version at once
rather than at its next poll.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHANNEL = "noctis_changes"  # sync_server.changes.CHANNEL


def upgrade() -> None:
    with op.batch_alter_table("model_activations") as batch:
        batch.add_column(sa.Column("action", sa.String(16), nullable=False, server_default="promote"))
    op.execute("UPDATE model_activations SET action = 'bootstrap' WHERE actor = 'bootstrap'")
    op.execute("UPDATE model_activations SET action = 'rollback' WHERE reason LIKE 'rollback%'")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION noctis_announce_activation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', 'model_activations');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER model_activations_announce AFTER INSERT ON model_activations "
        "FOR EACH ROW EXECUTE FUNCTION noctis_announce_activation()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER model_activations_announce ON model_activations")
        op.execute("DROP FUNCTION noctis_announce_activation()")
    with op.batch_alter_table("model_activations") as batch:
        batch.drop_column("action")
