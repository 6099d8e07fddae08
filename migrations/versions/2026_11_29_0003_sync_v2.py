"""Sync protocol v2: device incarnations, declared gaps, device health.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("health", sa.JSON(), nullable=True))
    op.create_table(
        "device_incarnations",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("incarnation", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("seq_offset", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.PrimaryKeyConstraint("device_id", "incarnation", name="pk_device_incarnations"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_device_incarnations_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "sync_gaps",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
        sa.Column("declared_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.PrimaryKeyConstraint("id", name="pk_sync_gaps"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_sync_gaps_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_sync_gaps_device_id_first_seq", "sync_gaps", ["device_id", "first_seq"])


def downgrade() -> None:
    op.drop_table("sync_gaps")
    op.drop_table("device_incarnations")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("health")
