"""Drift reports: one row per device and window, written by drift_service.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("window_start", UtcDateTime(), nullable=False),
        sa.Column("window_end", UtcDateTime(), nullable=False),
        sa.Column("server_model_version", sa.String(64), nullable=False),
        sa.Column("epochs", sa.Integer(), nullable=False),
        sa.Column("edge_agreement", sa.Float(), nullable=True),
        sa.Column("edge_kappa", sa.Float(), nullable=True),
        sa.Column("prediction_psi", sa.Float(), nullable=True),
        sa.Column("max_feature_psi", sa.Float(), nullable=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.PrimaryKeyConstraint("id", name="pk_drift_reports"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_drift_reports_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_drift_reports_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_drift_reports_tenant_id_device_id_id", "drift_reports", ["tenant_id", "device_id", "id"])


def downgrade() -> None:
    op.drop_table("drift_reports")
