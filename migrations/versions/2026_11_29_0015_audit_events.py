"""An audit log of what people did in a tenant: accounts, devices, deletions, rollouts.

One row per action, with who did it (a principal, or an operator's CLI), what to, and a
short detail; owners and admins read it at GET /v1/audit. Row-level security as on
every tenant table (migration 0008). Rows go when their tenant goes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db import UtcDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

APP_ROLE = "noctis_app"
CURRENT_TENANT = "NULLIF(current_setting('noctis.tenant_id', true), '')::uuid"


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.current_timestamp()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_audit_events_tenant_id_tenants", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_audit_events_tenant_id_id", "audit_events", ["tenant_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"REVOKE UPDATE, DELETE ON audit_events FROM {APP_ROLE}")  # the server appends, never rewrites
        op.execute("ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON audit_events USING (tenant_id = {CURRENT_TENANT})")


def downgrade() -> None:
    op.drop_table("audit_events")
