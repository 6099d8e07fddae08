"""Initial schema: tenants, users, devices, recordings, epochs, predictions, model activations.

On PostgreSQL with the timescaledb library loaded (shared_preload_libraries), epochs
and predictions become hypertables with compression (NOCTIS_COMPRESS_AFTER_DAYS,
default 7). Without it this step is skipped and plain tables serve; the migration logs
which it chose. Revision 0009 sets the chunk interval and compression a fleet needs;
the retention policy follows the server's setting (sync_server.migrate.apply_retention).

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime
from sync_server.migrate import timescaledb_loaded

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copy of feature schema v1: a migration must not change when the schema module does.
FEATURE_COLUMNS_V1 = (
    "hr_mean",
    "hr_std",
    "ibi_rmssd",
    "resp_rate_mean",
    "resp_rate_std",
    "resp_amplitude",
    "resp_regularity",
    "presence_ratio",
    "target_distance",
    "radar_motion",
    "activity_count",
    "accel_std",
    "accel_peak",
    "movement_events",
    "hours_since_start",
)


def _created_at() -> sa.Column:
    return sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp())


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_users_tenant_id_tenants", ondelete="CASCADE"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )
    op.create_index("ix_users_tenant_id", "users", ["tenant_id"])
    op.create_table(
        "devices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("ack_seq", sa.BigInteger(), nullable=False, server_default="-1"),
        sa.Column("last_seen_at", UtcDateTime(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_devices_tenant_id_tenants", ondelete="CASCADE"),
    )
    op.create_index("ix_devices_tenant_id", "devices", ["tenant_id"])
    op.create_table(
        "recordings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_recordings"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_recordings_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_recordings_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_recordings_tenant_id", "recordings", ["tenant_id"])
    op.create_index("ix_recordings_device_id", "recordings", ["device_id"])
    op.create_table(
        "epochs",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("start_time", UtcDateTime(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=True) for name in FEATURE_COLUMNS_V1),
        sa.Column("edge_stage", sa.SmallInteger(), nullable=True),
        sa.Column("edge_model_version", sa.Integer(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.PrimaryKeyConstraint("device_id", "seq", "start_time", name="pk_epochs"),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_epochs_device_id_devices", ondelete="CASCADE"),
    )
    op.create_index("ix_epochs_device_id_start_time", "epochs", ["device_id", "start_time"])
    op.create_table(
        "predictions",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("start_time", UtcDateTime(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("stage", sa.SmallInteger(), nullable=False),
        sa.Column("p_wake", sa.Float(), nullable=False),
        sa.Column("p_light", sa.Float(), nullable=False),
        sa.Column("p_deep", sa.Float(), nullable=False),
        sa.Column("p_rem", sa.Float(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("device_id", "seq", "start_time", "model_version", name="pk_predictions"),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_predictions_device_id_devices", ondelete="CASCADE"
        ),
    )
    op.create_table(
        "model_activations",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False, server_default=""),
        sa.Column("activated_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.PrimaryKeyConstraint("id", name="pk_model_activations"),
    )
    op.create_index("ix_model_activations_kind_id", "model_activations", ["kind", "id"])
    _timescale_upgrade()


def _timescale_upgrade() -> None:
    if not timescaledb_loaded(op.get_bind()):
        return
    compress_after = int(os.environ.get("NOCTIS_COMPRESS_AFTER_DAYS", "7"))
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    for table, order_by in (("epochs", "seq"), ("predictions", "seq, model_version")):
        op.execute(
            f"SELECT create_hypertable('{table}', 'start_time', "
            f"chunk_time_interval => INTERVAL '7 days', migrate_data => true, create_default_indexes => false)"
        )
        op.execute(
            f"ALTER TABLE {table} SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = '{order_by}')"
        )
        op.execute(f"SELECT add_compression_policy('{table}', INTERVAL '{compress_after} days')")


def downgrade() -> None:
    for table in ("model_activations", "predictions", "epochs", "recordings", "devices", "users", "tenants"):
        op.drop_table(table)
