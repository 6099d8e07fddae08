"""Every recording's window has an end: `ended_at` when the night is over, else 24 hours
after it started.

An open recording (no ended_at) used to reach over every later epoch of its device, so
predict, report, hypnogram and labels loaded it without limit. `window_end` is the one
place that says where its epochs stop; it is set when the recording is created or
ended (PATCH), and backfilled here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OPEN_NIGHT = timedelta(hours=24)  # sync_server.recordings.service.OPEN_NIGHT


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("window_end", UtcDateTime(), nullable=True))
    table = sa.table(
        "recordings",
        sa.column("id", sa.Uuid()),
        sa.column("started_at", UtcDateTime()),
        sa.column("ended_at", UtcDateTime()),
        sa.column("window_end", UtcDateTime()),
    )
    bind = op.get_bind()
    for row in bind.execute(sa.select(table.c.id, table.c.started_at, table.c.ended_at)).all():
        end = row.ended_at or row.started_at + OPEN_NIGHT
        bind.execute(table.update().where(table.c.id == row.id).values(window_end=end))
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("window_end", existing_type=UtcDateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("window_end")
