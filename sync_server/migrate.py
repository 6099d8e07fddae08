"""Run Alembic migrations programmatically (the server's CLI and the tests use this)."""

from __future__ import annotations

import asyncio
import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from sync_server import storage
from sync_server.db import engine_for_job
from sync_server.errors import Conflict
from sync_server.settings import REPO_ROOT


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url)
    config.set_main_option("file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def apply_retention(database_url: str, days: int) -> None:
    """Apply NOCTIS_RETENTION_DAYS, when set, to TimescaleDB's retention of epochs and
    predictions (run by the CLI after every upgrade; /internal/db/policies changes it
    at run time, and 0 leaves it as it is)."""

    async def apply() -> None:
        async with engine_for_job(database_url) as engine, engine.begin() as conn:
            try:
                await storage.set_policies(conn, compress_after_days=None, retention_days=days)
            except Conflict as exc:
                raise RuntimeError(f"NOCTIS_RETENTION_DAYS needs TimescaleDB: {exc}") from exc

    if days:
        asyncio.run(apply())


def upgrade(database_url: str, revision: str = "head") -> None:
    """Must be called with no event loop running in this thread (env.py uses asyncio.run)."""
    command.upgrade(alembic_config(database_url), revision)


def require_current(database_url: str) -> None:
    """Refuse to work on a schema other than this code's, without changing it (an upgrade
    took 1.7 s even with nothing to do)."""

    def heads(sync: Connection) -> set[str]:
        # Only read: without alembic's notes on how it would migrate, which it is not asked to.
        alembic_log = logging.getLogger("alembic.runtime.migration")
        level = alembic_log.level
        alembic_log.setLevel(logging.WARNING)
        try:
            return set(MigrationContext.configure(sync).get_current_heads())
        finally:
            alembic_log.setLevel(level)

    async def current() -> set[str]:
        async with engine_for_job(database_url) as engine, engine.connect() as conn:
            return await conn.run_sync(heads)

    wanted = set(ScriptDirectory.from_config(alembic_config(database_url)).get_heads())
    found = asyncio.run(current())
    if found != wanted:
        raise RuntimeError(
            f"the database schema is at {', '.join(sorted(found)) or 'nothing'}, this server needs "
            f"{', '.join(sorted(wanted))}: run `python -m sync_server migrate` first"
        )


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def timescaledb_loaded(conn: Connection) -> bool:
    """Whether this PostgreSQL server can make hypertables: the timescaledb library must
    be preloaded. Being listed in pg_available_extensions is not enough: once installed
    it is listed on every server, and CREATE EXTENSION then fails unless preloaded.
    Logs the storage chosen, so an operator sees which one a migration made."""
    if conn.dialect.name != "postgresql":
        return False
    preloaded = conn.execute(text("SELECT current_setting('shared_preload_libraries')")).scalar() or ""
    loaded = "timescaledb" in [name.strip() for name in preloaded.split(",")]
    logging.getLogger("alembic.runtime.migration").info(
        "storage: %s",
        "TimescaleDB hypertables" if loaded else "plain PostgreSQL tables (timescaledb is not preloaded)",
    )
    return loaded


def compressed_hypertables(conn: Connection) -> set[str]:
    """The tables TimescaleDB compresses (and therefore refuses row security on)."""
    if conn.dialect.name != "postgresql":
        return set()
    if not conn.execute(storage.TIMESCALEDB_INSTALLED).scalar():
        return set()
    query = "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE compression_enabled"
    return set(conn.execute(text(query)).scalars())
