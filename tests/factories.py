"""Small builders of epochs and batches for tests."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.sql import Executable

from noctis_contract.features import EPOCH_SECONDS, FEATURES

NIGHT_START = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)


def plausible_features(rng: np.random.Generator, hours: float) -> list[float | None]:
    """A feature vector inside every valid range, with accelerometer values sometimes missing."""
    values: list[float | None] = []
    for feature in FEATURES:
        if feature.name == "hours_since_start":
            values.append(round(hours, 4))
        else:
            values.append(round(float(rng.uniform(feature.quant_min, feature.quant_max)), 3))
    if rng.random() < 0.1:
        values[11] = None
    return values


def iso(moment: datetime) -> str:
    """A time as the API writes it: UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


def epoch_json(seq: int, rng: np.random.Generator | None = None, start: datetime = NIGHT_START) -> dict[str, Any]:
    rng = rng or np.random.default_rng(seq)
    return {
        "seq": seq,
        "start": iso(start + timedelta(seconds=EPOCH_SECONDS * seq)),
        # Nights of 8 hours: hours since start stays inside the schema's range for any seq.
        "features": plausible_features(rng, (seq % 960) * EPOCH_SECONDS / 3600),
        "edge_stage": int(rng.integers(0, 4)),
    }


def batch_json(seqs: range | list[int], start: datetime = NIGHT_START, **overrides: Any) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "edge_model_version": 1,
        "epochs": [epoch_json(s, start=start) for s in seqs],
        **overrides,
    }


def stored_column(database_url: str, table_name: str, column: str, device_id: str) -> list[Any]:
    """One column of a device's rows in epochs or predictions, in seq order, read straight
    from the database (duplicates kept)."""
    import asyncio
    import uuid

    from sqlalchemy import select

    from sync_server.db import engine_for_job, metadata

    table = metadata.tables[table_name]

    async def read() -> list[Any]:
        async with engine_for_job(database_url) as engine, engine.connect() as conn:
            query = select(table.c[column]).where(table.c.device_id == uuid.UUID(device_id)).order_by(table.c.seq)
            return list((await conn.execute(query)).scalars())

    return asyncio.run(read())


def run_sql(database_url: str, statement: str | Executable, **params: Any) -> list[Any]:
    """Run one statement (SQL text, or SQLAlchemy's, whose column types also convert
    values for SQLite) on a connection of its own, as another server, the CLI or a job
    would; its rows, if it returns any."""
    import asyncio

    from sqlalchemy import text

    from sync_server.db import engine_for_job

    async def run() -> list[Any]:
        async with engine_for_job(database_url) as engine, engine.begin() as conn:
            result = await conn.execute(text(statement) if isinstance(statement, str) else statement, params)
            return list(result.all()) if result.returns_rows else []

    return asyncio.run(run())


def stored_seqs(database_url: str, device_id: str) -> list[int]:
    """Every seq stored for a device (duplicates kept)."""
    return stored_column(database_url, "epochs", "seq", device_id)


def bundled_version(kind: str) -> str:
    """The newest registered model of a kind: what a fresh server activates."""
    from sync_server.models.service import ModelStore
    from sync_server.settings import Settings

    version = ModelStore(Settings().registry_dir).newest_version(kind)
    assert version is not None, f"no {kind} model in the registry"
    return version


def edge_lookahead() -> int:
    """The lookahead of the edge model the firmware ships with (kEdgeModelLookahead): the
    device holds back that many of its newest epochs until their stage is known."""
    header = (Path(__file__).resolve().parent.parent / "edge_firmware/include/noctis_model_data.h").read_text()
    match = re.search(r"kEdgeModelLookahead = (\d+);", header)
    assert match, "the firmware's model header names no lookahead"
    return int(match.group(1))


@contextmanager
def write_lock_held(database_url: str, seconds: float) -> Iterator[None]:
    """Hold the lock every ingest needs for `seconds` from another connection (on
    PostgreSQL the devices table, on SQLite the database's write lock); the block runs
    once it is taken, and the lock is released by the end of the block."""
    import asyncio

    from sqlalchemy import text

    from sync_server.db import engine_for_job

    taken = threading.Event()

    async def hold() -> None:
        async with engine_for_job(database_url) as engine, engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE
            if conn.dialect.name == "postgresql":
                await conn.execute(text("LOCK TABLE devices IN ACCESS EXCLUSIVE MODE"))
            taken.set()
            await asyncio.sleep(seconds)

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    assert taken.wait(10), "the lock was not taken"
    try:
        yield
    finally:
        holder.join()


def model_registry(root: Path, *versions: str) -> Path:
    """A registry of its own under root, holding copies of these bundled versions."""
    import shutil

    from model_export.__main__ import DEFAULT_REGISTRY

    registry = root / "registry"
    registry.mkdir()
    for version in versions:
        shutil.copytree(DEFAULT_REGISTRY / version, registry / version)
    return registry


def registered_variant(
    registry: Path, source: str, version: str, kappa4: float, version_number: int | None = None
) -> None:
    """A copy of a bundled version registered as another, with another benchmark score
    (and, for an edge model, another model number if given)."""
    import json
    import shutil

    from model_export.__main__ import DEFAULT_REGISTRY

    shutil.copytree(DEFAULT_REGISTRY / source, registry / version)
    manifest = json.loads((registry / version / "manifest.json").read_text())
    manifest["version"], manifest["metrics"]["kappa4"] = version, kappa4
    if version_number is not None:
        manifest["version_number"] = version_number
    (registry / version / "manifest.json").write_text(json.dumps(manifest))


def run_lifecycle(database_url: str, registry: Path, call: Any) -> Any:
    """Run call(conn, ModelStore(registry)) in a transaction, as the CLI's models command does."""
    import asyncio

    from sync_server.db import engine_for_job
    from sync_server.models.service import ModelStore

    async def go() -> Any:
        async with engine_for_job(database_url) as engine, engine.begin() as conn:
            return await call(conn, ModelStore(registry))

    return asyncio.run(go())
