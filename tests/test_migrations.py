"""Migrations are the schema: they must produce exactly what the code's tables declare."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sync_server import migrate
from sync_server.db import engine_for_job, metadata


def _diff(url: str) -> list:
    async def run() -> list:
        async with engine_for_job(url) as engine, engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )

    return asyncio.run(run())


def test_migrated_schema_matches_the_table_definitions(database_url):
    assert _diff(database_url) == []


def test_downgrade_and_upgrade_round_trip(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'round-trip.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    migrate.upgrade(url)
    assert _diff(url) == []
