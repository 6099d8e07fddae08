"""Tables, engine and the one-transaction-per-request connection.

SQLAlchemy Core, no ORM: the service layer works on rows and bulk statements
(ingest inserts thousands of epochs per request), and Core keeps that explicit.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.elements import TextClause

from noctis_contract.features import FEATURE_NAMES, N_FEATURES, dequantize
from sync_server.faults import INJECTOR, InjectedFault

# Named constraints from the first migration on, so later migrations can address them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: Noctis stores UTC instants only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _created_at() -> Column[Any]:
    return Column("created_at", UtcDateTime, nullable=False, server_default=func.current_timestamp())


tenants = Table(
    "tenants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    _created_at(),
)


def _principal_state() -> list[Column[Any]]:
    # A disabled principal is refused; token_version is in every token and is bumped by
    # disabling and by a new secret, which ends every token issued before.
    return [
        Column("disabled_at", UtcDateTime, nullable=True),
        Column("token_version", Integer, nullable=False, server_default="0"),
    ]


users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    # Unique within a tenant only: creating a user must not tell one tenant's admin that
    # an email exists in another (the login tells the accounts apart by their password).
    Column("email", String(320), nullable=False, index=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),  # owner | admin | member
    *_principal_state(),
    _created_at(),
    UniqueConstraint("tenant_id", "email", name="uq_users_tenant_id_email"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(200), nullable=False),
    # Highest seq up to which every epoch of the device is stored; -1 before the first.
    Column("ack_seq", BigInteger, nullable=False, server_default="-1"),
    # Highest seq stored at all: a batch above it has no duplicates to look up, and while
    # it equals ack_seq no stored epoch waits beyond the watermark.
    Column("stored_seq", BigInteger, nullable=False, server_default="-1"),
    Column("last_seen_at", UtcDateTime, nullable=True),
    # What the device said about itself with its last upload (noctis_contract.session).
    Column("health", JSON, nullable=True),
    # OTA: what the device was last offered (migration 0013), and the edge model its
    # uploads say it runs (the manifest's model number) since when.
    Column("ota_offered_version", String(64), nullable=True),
    Column("ota_offered_rollout", Integer, nullable=True),
    Column("ota_offered_at", UtcDateTime, nullable=True),
    Column("edge_model_number", BigInteger, nullable=True),
    Column("edge_model_since", UtcDateTime, nullable=True),
    *_principal_state(),
    _created_at(),
)

# Each seq space a device has used. A device that loses its non-volatile state starts
# again at seq 0 under a new random incarnation; the server places that space after
# everything it holds, so old and new seqs never collide and an old watermark is never
# answered to a restarted counter.
device_incarnations = Table(
    "device_incarnations",
    metadata,
    Column("device_id", Uuid, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("incarnation", BigInteger, primary_key=True, autoincrement=False),
    Column("tenant_id", Uuid, nullable=False),
    Column("seq_offset", BigInteger, nullable=False),  # stored seq = seq_offset + the device's seq
    _created_at(),
)

# Seqs that will never arrive, with the reason: declared by the device (dropped when its
# queue was full, erased as corrupt), rejected for good by the server, or left behind by
# an ended incarnation. The watermark passes them; they are counted, never silent.
sync_gaps = Table(
    "sync_gaps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("device_id", Uuid, ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", Uuid, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("detail", String(500), nullable=False, server_default=""),
    Column("declared_at", UtcDateTime, nullable=False, server_default=func.current_timestamp()),
    Index("ix_sync_gaps_device_id_first_seq", "device_id", "first_seq"),
)

# Failed logins and device-token exchanges of the last minutes, per account and per
# source address: the brute-force limit every worker shares (sync_server/accounts/throttle.py).
auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(400), nullable=False),  # "account:<email or device id>" | "source:<address>"
    Column("failed_at", UtcDateTime, nullable=False),
    Index("ix_auth_failures_key_failed_at", "key", "failed_at"),
    Index("ix_auth_failures_failed_at", "failed_at"),
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("device_id", Uuid, ForeignKey("devices.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    # Where the window's epochs stop: ended_at, or 24 h after started_at while the night
    # is open (sync_server.recordings.service.window_end; migration 0014).
    Column("window_end", UtcDateTime, nullable=False),
    Column("label", String(200), nullable=False, server_default=""),
    _created_at(),
)

# One row per 30-s epoch. The primary key holds start_time because a TimescaleDB
# hypertable partitioned by time requires it; (device_id, seq) stays unique because
# ingest checks existing seqs under a per-device lock before it inserts. Features are
# the device's 1-byte codes as sent (noctis_contract.features: quantize/dequantize,
# 255 = missing), in columns named after the features.
epochs = Table(
    "epochs",
    metadata,
    Column("device_id", Uuid, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("start_time", UtcDateTime, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    *(Column(name, SmallInteger, nullable=False) for name in FEATURE_NAMES),
    Column("edge_stage", SmallInteger, nullable=True),
    Column("edge_model_version", BigInteger, nullable=True),  # the device's uint32
    Column("received_at", UtcDateTime, nullable=False, server_default=func.current_timestamp()),
    Index("ix_epochs_device_id_start_time", "device_id", "start_time"),
)


def feature_values(rows: Sequence[Sequence[Any]], first: int = 0) -> np.ndarray:
    """The float features (NaN = missing) of stored rows whose columns first..first+14
    are the epoch's feature codes, in FEATURE_NAMES order."""
    codes = np.array([row[first : first + N_FEATURES] for row in rows], dtype=np.uint8)
    return dequantize(codes.reshape(len(rows), N_FEATURES))


predictions = Table(
    "predictions",
    metadata,
    Column("device_id", Uuid, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("start_time", UtcDateTime, primary_key=True),
    Column("model_version", Text, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("stage", SmallInteger, nullable=False),
    Column("p_wake", Float, nullable=False),
    Column("p_light", Float, nullable=False),
    Column("p_deep", Float, nullable=False),
    Column("p_rem", Float, nullable=False),
    _created_at(),
)

# What people (PSG scorers) say each epoch was: the truth models are evaluated on.
stage_labels = Table(
    "stage_labels",
    metadata,
    Column("device_id", Uuid, ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("start_time", UtcDateTime, primary_key=True),  # the labelled epoch's start
    Column("tenant_id", Uuid, nullable=False),
    Column("stage", SmallInteger, nullable=False),  # noctis_contract.stages.Stage
    Column("scorer", String(200), nullable=False),  # who or what scored it
    _created_at(),
)

# Which model version is active per kind: the latest row wins, the rest is the audit trail.
model_activations = Table(
    "model_activations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # edge | server | shadow (a server version scored, not served)
    Column("version", String(64), nullable=False),
    # bootstrap | promote | rollback; for kind shadow: shadow | stop
    Column("action", String(16), nullable=False, server_default="promote"),
    Column("actor", String(200), nullable=False),
    Column("reason", String(500), nullable=False, server_default=""),
    Column("activated_at", UtcDateTime, nullable=False, server_default=func.current_timestamp()),
    Index("ix_model_activations_kind_id", "kind", "id"),
)


# Which edge model devices are offered: fleet-wide rows (tenant_id NULL, 100 %) from
# promote and rollback, and tenants' staged rollouts. The id is the rollout number the
# manifest signs (sync_server.ota.service). Written by operators only.
edge_rollouts = Table(
    "edge_rollouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
    Column("version", String(64), nullable=False),
    Column("previous_version", String(64), nullable=True),
    Column("percent", Integer, CheckConstraint("percent BETWEEN 0 AND 100", name="percent"), nullable=False),
    Column("state", String(16), nullable=False, server_default="active"),  # active | paused
    Column("actor", String(200), nullable=False),
    Column("reason", String(500), nullable=False, server_default=""),
    _created_at(),
    Column("updated_at", UtcDateTime, nullable=False, server_default=func.current_timestamp()),
    Index("ix_edge_rollouts_tenant_id_id", "tenant_id", "id"),
)


# What people did in a tenant (sync_server.audit): appended, never rewritten.
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("actor", String(200), nullable=False),  # user:<id>, device:<id> or cli:<login>
    Column("action", String(64), nullable=False),  # device.create, user.disable, recording.delete, rollout.release…
    Column("target", String(100), nullable=False),
    Column("detail", String(500), nullable=False, server_default=""),
    _created_at(),
    Index("ix_audit_events_tenant_id_id", "tenant_id", "id"),
)


# One row per device and window, written by drift_service; the server only reads them.
drift_reports = Table(
    "drift_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("device_id", Uuid, ForeignKey("devices.id", ondelete="CASCADE"), nullable=False),
    Column("window_start", UtcDateTime, nullable=False),
    Column("window_end", UtcDateTime, nullable=False),
    Column("server_model_version", String(64), nullable=False),
    Column("epochs", Integer, nullable=False),
    Column("edge_agreement", Float, nullable=True),
    Column("edge_kappa", Float, nullable=True),
    Column("prediction_psi", Float, nullable=True),
    Column("max_feature_psi", Float, nullable=True),
    Column("level", String(16), nullable=False),  # stable | major | unknown (moderate: older reports)
    Column("details", JSON, nullable=False),
    _created_at(),
    Index("ix_drift_reports_tenant_id_device_id_id", "tenant_id", "device_id", "id"),
)


@dataclass(frozen=True)
class DatabaseLimits:
    """How long the server waits on PostgreSQL before it answers 503 instead.

    statement_timeout, lock_timeout and idle_in_transaction_session_timeout are set on
    each of the server's sessions; command_timeout makes the driver give up on a
    server that no longer answers at all; pool_timeout bounds the wait for a pooled
    connection. Jobs (migrations, drift) run without them.
    """

    pool_size: int = 10
    pool_timeout_seconds: float = 5.0
    statement_timeout_ms: int = 15_000
    lock_timeout_ms: int = 5_000
    idle_in_transaction_timeout_ms: int = 30_000

    def connect_args(self) -> dict[str, Any]:
        return {
            "command_timeout": self.statement_timeout_ms / 1000 + 5,
            "server_settings": {
                "statement_timeout": str(self.statement_timeout_ms),
                "lock_timeout": str(self.lock_timeout_ms),
                "idle_in_transaction_session_timeout": str(self.idle_in_transaction_timeout_ms),
            },
        }


def make_engine(url: str, limits: DatabaseLimits | None = None, foreign_keys: bool = True) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        _make_sqlite_serial(engine, foreign_keys)
    else:
        pool: dict[str, Any] = {}
        if limits is not None:
            pool = {
                "pool_size": limits.pool_size,
                "max_overflow": limits.pool_size,
                "pool_timeout": limits.pool_timeout_seconds,
                "connect_args": limits.connect_args(),
            }
        engine = create_async_engine(url, **pool)
        _discard_closed_connections(engine)
    return engine


def _discard_closed_connections(engine: AsyncEngine) -> None:
    """Never hand out a pooled connection whose socket is closed: after a database restart
    each pooled connection has seen its server hang up, and the pool replaces it with a
    new one instead of failing a request with it.

    This stands in for pool_pre_ping, which asks the server on every checkout (with
    asyncpg: BEGIN, a query, ROLLBACK; three round trips that halved the throughput of
    a one-query request). A server gone silent without a goodbye is caught by the
    driver's command timeout instead, as it would be mid-request anyway."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the database closed this connection")  # the pool tries another


# SQLSTATE classes and codes that say "not now" rather than "not this": the same
# request can succeed once the database is back, has a free connection or the lock.
_TRANSIENT_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "57P05", "57014", "55P03", "40001", "40P01")
_DRIVER_MODULES = ("asyncpg", "sqlalchemy", "aiosqlite", "sqlite3")


def database_fault(exc: BaseException) -> str | None:
    """Why exc means the database cannot answer now, or None when exc is anything else
    (a bug, a constraint, bad input): the one place that decides 503 versus 500."""
    if isinstance(exc, PoolTimeout):
        return "no database connection free"
    if isinstance(exc, InjectedFault) and exc.target == "database":
        return "the database is unavailable (an injected fault)"
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        if exc.connection_invalidated or sqlstate.startswith(_TRANSIENT_SQLSTATES):
            return "the database is unavailable or too slow"
        cause = getattr(exc.orig, "__cause__", None)
        if type(cause).__module__.startswith("asyncpg") and type(cause).__name__.startswith("Connection"):
            return "the database connection was lost"
        if isinstance(exc, OperationalError):  # SQLite: locked or busy past its timeout
            return "the database is busy"
        return None
    if isinstance(exc, OSError | TimeoutError) and _raised_in_driver(exc):
        return "the database is unreachable"
    return None


def _raised_in_driver(exc: BaseException) -> bool:
    # A refused connect or a driver timeout arrives as a bare OSError or TimeoutError;
    # one raised in our own code (a missing file) must not pass for a database fault.
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


@asynccontextmanager
async def engine_for_job(url: str, foreign_keys: bool = True) -> AsyncIterator[AsyncEngine]:
    """An engine for one command or worker run, disposed when it ends. foreign_keys=False
    is for migrations on SQLite, which alter a table by copying it and dropping the old
    one: with foreign keys enforced, that drop would delete every child row."""
    engine = make_engine(url, foreign_keys=foreign_keys)
    try:
        yield engine
    finally:
        await engine.dispose()


async def insert_ignoring_conflicts(
    conn: AsyncConnection, table: Table, same: dict[str, Any], columns: dict[str, list[Any]]
) -> int:
    """Insert rows given as columns (one list per column, plus values the same for every
    row), skipping any whose primary key is already stored; return how many were new.

    PostgreSQL gets the rows in one statement and one round trip: one array per column,
    unnested by the server (COPY is faster still but cannot skip stored keys). SQLite
    gets one statement executed with many parameter sets."""
    count = len(next(iter(columns.values()), []))
    if not count:
        return 0
    if conn.dialect.name == "postgresql":
        return int(
            (await conn.execute(_insert_from_arrays(table, tuple(same), tuple(columns)), {**same, **columns})).rowcount
        )
    key = next(iter(table.primary_key.columns))
    statement = sqlite.insert(table).on_conflict_do_nothing().returning(key)
    rows = [{**same, **dict(zip(columns, values))} for values in zip(*columns.values())]
    return len((await conn.execute(statement, rows)).all())


@functools.cache
def _insert_from_arrays(table: Table, same: tuple[str, ...], columns: tuple[str, ...]) -> TextClause:
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]

    def sql_type(name: str) -> str:
        return table.c[name].type.compile(dialect=dialect)

    values = [f"CAST(:{name} AS {sql_type(name)})" for name in same]
    arrays = [f"CAST(:{name} AS {sql_type(name)}[])" for name in columns]
    return text(
        f"INSERT INTO {table.name} ({', '.join(same + columns)}) "
        f"SELECT {', '.join([*values, 'u.*'])} FROM unnest({', '.join(arrays)}) AS u({', '.join(columns)}) "
        f"ON CONFLICT DO NOTHING"
    )


def _make_sqlite_serial(engine: AsyncEngine, foreign_keys: bool) -> None:
    """WAL, foreign keys, and BEGIN IMMEDIATE for transactions that write, so that
    concurrent writers queue for the lock instead of failing with "database is locked"
    when a read upgrades to a write. Read-only transactions take no lock at all (WAL
    readers see a snapshot): a report or a prediction never waits behind an upload."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


READ_ONLY = "noctis_read_only"  # execution option: this transaction does not write


@asynccontextmanager
async def transaction(
    engine: AsyncEngine, tenant_id: uuid.UUID | None, writes: bool = True
) -> AsyncIterator[AsyncConnection]:
    """The request's one transaction: committed when the block ends, else rolled back,
    scoped to the caller's tenant by row-level security. writes=False promises it only
    reads (on SQLite it then takes no lock).

    Handlers get it as the `conn` dependency, which Litestar closes before it sends the
    response (ingest opens it itself, once the body is read): a client never sees an
    ack for a batch whose commit failed.
    """
    async with (engine if writes else engine.execution_options(**{READ_ONLY: True})).begin() as conn:
        if tenant_id is not None:
            await scope_to_tenant(conn, tenant_id)
        yield conn


APP_ROLE = "noctis_app"  # see migrations/versions/2026_11_29_0008_row_level_security.py


async def scope_to_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> None:
    """For the rest of this transaction, act as the app role with this tenant: PostgreSQL's
    row-level security then hides and refuses every other tenant's rows, whatever filter
    a query forgets. (SQLite has no roles: there TenantRepository is the only guard.)
    Every request transaction begins here, so a drill's database faults act here too."""
    await INJECTOR.apply("database")
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(func.set_config("role", APP_ROLE, True), func.set_config("noctis.tenant_id", str(tenant_id), True))
        )
