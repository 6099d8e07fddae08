"""Staged edge-model rollouts, and what each device was offered and runs.

`edge_rollouts`: each row is one decision about which edge model devices are offered:
a fleet-wide promote or rollback (tenant_id NULL, 100 %), or a tenant's staged release
to a percentage of its devices (deterministic by device id), widened in place, paused,
or rolled back by a newer row. The row's id is the rollout number signed into the
manifest: a device installs only a higher number than it has seen, so an old manifest
cannot be replayed, and a rollback (a newer number for an older model) brings devices
back. Tenants see the fleet's rows and their own (row-level security as migration 0008).

`devices` gains what it was last offered (version, rollout number, when) and the edge
model it runs (the model number its uploads carry, and since when).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

APP_ROLE = "noctis_app"
CURRENT_TENANT = "NULLIF(current_setting('noctis.tenant_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "edge_rollouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("previous_version", sa.String(64), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.Column("updated_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_edge_rollouts_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.CheckConstraint("percent BETWEEN 0 AND 100", name="ck_edge_rollouts_percent"),
        sa.PrimaryKeyConstraint("id", name="pk_edge_rollouts"),
    )
    op.create_index("ix_edge_rollouts_tenant_id_id", "edge_rollouts", ["tenant_id", "id"])
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("ota_offered_version", sa.String(64), nullable=True))
        batch.add_column(sa.Column("ota_offered_rollout", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ota_offered_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("edge_model_number", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("edge_model_since", UtcDateTime(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # Operators write rollouts (the CLI, as the owner); the server only reads them.
        op.execute(f"REVOKE INSERT, UPDATE, DELETE ON edge_rollouts FROM {APP_ROLE}")
        op.execute("ALTER TABLE edge_rollouts ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON edge_rollouts USING (tenant_id IS NULL OR tenant_id = {CURRENT_TENANT})"
        )


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        for column in (
            "edge_model_since",
            "edge_model_number",
            "ota_offered_at",
            "ota_offered_rollout",
            "ota_offered_version",
        ):
            batch.drop_column(column)
    op.drop_table("edge_rollouts")
