"""Every value a device can send fits its column: edge model versions are uint32.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("epochs") as batch:
        batch.alter_column("edge_model_version", type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    with op.batch_alter_table("epochs") as batch:
        batch.alter_column("edge_model_version", type_=sa.Integer(), existing_type=sa.BigInteger())
