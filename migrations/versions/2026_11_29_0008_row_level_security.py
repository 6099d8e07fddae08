"""Row-level security on every tenant table (PostgreSQL), as defence in depth.

Requests run as the role `noctis_app`, which owns nothing: once a request knows its
tenant, its transaction does SET LOCAL ROLE noctis_app and sets `noctis.tenant_id`
(sync_server.db.scope_to_tenant), and from then on every statement sees and writes
that tenant's rows only, whatever filter a query forgets. An unset tenant sees
nothing. The login role (the tables' owner) keeps working across tenants where that is
the job: migrations, the drift and rescoring jobs, and the two credential exchanges,
which look a principal up before any tenant is known. FORCE would subject that owner
too and so break those jobs; the app role is not the owner, so its policies hold
without it.

TimescaleDB refuses row security on a hypertable with compression ("columnstore cannot
be used on table with row security"), so there epochs and predictions are guarded by
the application's tenant filter alone (TenantRepository), as on SQLite: compression
is what makes a fleet's nights affordable to keep.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

from sync_server.migrate import compressed_hypertables

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

APP_ROLE = "noctis_app"
READ_WRITE = "SELECT, INSERT, UPDATE, DELETE"
TENANT_TABLES = [
    "users", "devices", "device_incarnations", "sync_gaps", "recordings", "epochs", "predictions", "drift_reports",
]  # fmt: skip
CURRENT_TENANT = "NULLIF(current_setting('noctis.tenant_id', true), '')::uuid"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite, the embedded single-user default, has no roles
    op.execute(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') "
        f"THEN CREATE ROLE {APP_ROLE} NOLOGIN; END IF; END $$"
    )
    op.execute(f"GRANT {APP_ROLE} TO CURRENT_USER")  # so that the server's login may SET ROLE to it
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT {READ_WRITE} ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}"
    )
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}")
    for table in set(TENANT_TABLES) - compressed_hypertables(op.get_bind()):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING (tenant_id = {CURRENT_TENANT})")
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY tenant_isolation ON tenants USING (id = {CURRENT_TENANT})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in [*TENANT_TABLES, "tenants"]:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
