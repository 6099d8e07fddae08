"""TimescaleDB's policies of the two hypertables, read and changed at run time.

The database is the one truth about retention: ingest asks it (only for epochs older
than a device's offline horizon, the only ones a retention can concern), migrate applies
NOCTIS_RETENTION_DAYS to it when set, and /internal/db/policies shows and changes it.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from sync_server.errors import Conflict, InvalidInput
from sync_server.settings import retention_too_short

HYPERTABLES = ("epochs", "predictions")


class TablePolicies(msgspec.Struct):
    table: str
    chunk_interval_hours: float
    compress_after_days: float | None  # None: never compressed
    retention_days: float | None  # None: kept for good
    chunks: int
    compressed_chunks: int


TIMESCALEDB_INSTALLED = text("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")
NOT_LOADED = "TimescaleDB is not loaded in this database: plain tables have no policies"


async def timescaledb_active(conn: AsyncConnection) -> bool:
    """Whether this database has TimescaleDB (and so hypertables with policies)."""
    return conn.dialect.name == "postgresql" and bool((await conn.execute(TIMESCALEDB_INSTALLED)).scalar())


async def retention(conn: AsyncConnection) -> timedelta | None:
    """How long TimescaleDB keeps epochs, or None when nothing is ever dropped."""
    if not await timescaledb_active(conn):
        return None
    return await _policy_interval(conn, "epochs", "policy_retention", "drop_after")


async def policies(conn: AsyncConnection) -> list[TablePolicies]:
    if not await timescaledb_active(conn):
        raise Conflict(NOT_LOADED)
    answer = []
    for table in HYPERTABLES:
        interval = await conn.execute(
            text(
                "SELECT time_interval FROM timescaledb_information.dimensions "
                "WHERE hypertable_name = :table AND dimension_number = 1"
            ),
            {"table": table},
        )
        chunks = await conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE is_compressed) FROM timescaledb_information.chunks "
                "WHERE hypertable_name = :table"
            ),
            {"table": table},
        )
        total, compressed = chunks.one()
        compress_after = await _policy_interval(conn, table, "policy_compression", "compress_after")
        drop_after = await _policy_interval(conn, table, "policy_retention", "drop_after")
        answer.append(
            TablePolicies(
                table=table,
                chunk_interval_hours=interval.scalar_one().total_seconds() / 3600,
                compress_after_days=_days(compress_after),
                retention_days=_days(drop_after),
                chunks=int(total),
                compressed_chunks=int(compressed),
            )
        )
    return answer


async def set_policies(conn: AsyncConnection, compress_after_days: int | None, retention_days: int | None) -> None:
    """Compress chunks older than compress_after_days (None: leave as is) and drop those
    older than retention_days (0: never), on both hypertables."""
    if not await timescaledb_active(conn):
        raise Conflict(NOT_LOADED)
    if reason := retention_too_short(retention_days or 0):
        raise InvalidInput(reason)
    for table in HYPERTABLES:
        if compress_after_days is not None:
            await conn.execute(text(f"SELECT remove_compression_policy('{table}', if_exists => true)"))
            await conn.execute(
                text(f"SELECT add_compression_policy('{table}', make_interval(days => :days))"),
                {"days": compress_after_days},
            )
        if retention_days is not None:
            await conn.execute(text(f"SELECT remove_retention_policy('{table}', if_exists => true)"))
            if retention_days:
                await conn.execute(
                    text(f"SELECT add_retention_policy('{table}', make_interval(days => :days))"),
                    {"days": retention_days},
                )


async def _policy_interval(conn: AsyncConnection, table: str, proc: str, key: str) -> timedelta | None:
    query = text(
        f"SELECT (config->>'{key}')::interval FROM timescaledb_information.jobs "
        "WHERE hypertable_name = :table AND proc_name = :proc"
    )
    value: timedelta | None = (await conn.execute(query, {"table": table, "proc": proc})).scalar()
    return value


def _days(interval: timedelta | None) -> float | None:
    return None if interval is None else interval.total_seconds() / 86400
