"""Principals that can be disabled, and tokens that end with a credential change.

A token carries its principal's token_version; disabling, deleting or rotating a
secret bumps it, so every token issued before is refused on its next request.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("users", "devices"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("disabled_at", UtcDateTime(), nullable=True))
            batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    for table in ("users", "devices"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("token_version")
            batch.drop_column("disabled_at")
