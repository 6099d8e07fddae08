"""Stage labels scored by people (PSG) for a device's epochs: the truth models are
evaluated on (`python -m sync_server models evaluate`) and promoted by.

One label per device and epoch start, with who scored it. Row-level security as on every
tenant table (migration 0008).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

APP_ROLE = "noctis_app"
CURRENT_TENANT = "NULLIF(current_setting('noctis.tenant_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "stage_labels",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("start_time", UtcDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("scorer", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.PrimaryKeyConstraint("device_id", "start_time", name="pk_stage_labels"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_stage_labels_device_id_devices", ondelete="CASCADE"
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON stage_labels TO {APP_ROLE}")
        op.execute("ALTER TABLE stage_labels ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON stage_labels USING (tenant_id = {CURRENT_TENANT})")


def downgrade() -> None:
    op.drop_table("stage_labels")
