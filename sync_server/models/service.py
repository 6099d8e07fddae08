"""Which model version is active (in the database, audited) and the loaded models.

The active version per kind is the latest row of ``model_activations``, so every
worker and replica agrees. A worker holds its loaded model in ``ModelStore``; a
swap replaces one reference, so requests in flight finish on the model they began with.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from noctis_contract.night_model import NightModel, load_night_model
from sync_server.db import model_activations

log = logging.getLogger(__name__)


@dataclass
class ModelStore:
    registry_dir: Path
    server: NightModel | None = None
    server_manifest: dict[str, object] = field(default_factory=dict)

    def manifest(self, version: str) -> dict[str, Any]:
        """A registered version's manifest (its file hashes, metrics, budget…)."""
        manifest: dict[str, Any] = json.loads((self.registry_dir / version / "manifest.json").read_text())
        return manifest

    def registered_versions(self, kind: str) -> list[str]:
        return [
            path.parent.name
            for path in sorted(self.registry_dir.glob("*/manifest.json"))
            if self.manifest(path.parent.name).get("kind") == kind
        ]

    def newest_version(self, kind: str) -> str | None:
        registered = self.registered_versions(kind)
        return max(registered, key=_version_key) if registered else None


async def active_version(conn: AsyncConnection, kind: str) -> str | None:
    query = (
        select(model_activations.c.version)
        .where(model_activations.c.kind == kind)
        .order_by(model_activations.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).scalar_one_or_none()


async def activate(conn: AsyncConnection, kind: str, version: str, actor: str, reason: str) -> None:
    await conn.execute(model_activations.insert().values(kind=kind, version=version, actor=actor, reason=reason))


# Any constant both workers agree on: the first start's activation is written once.
_BOOTSTRAP_LOCK = 0x4E4F4354  # "NOCT"


async def load_active_server_model(conn: AsyncConnection, store: ModelStore) -> None:
    """Follow the database: load the active server model unless it is the one in memory;
    on a fresh database, activate the newest registered one (once, whatever the number
    of workers starting together)."""
    version = await active_version(conn, "server")
    if version is None:
        if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises
            await conn.execute(select(func.pg_advisory_xact_lock(_BOOTSTRAP_LOCK)))
            version = await active_version(conn, "server")
    if version is None:
        version = store.newest_version("server")
        if version is None:
            if store.server is None:
                log.error("no server model in %s: /v1/predict will answer 503", store.registry_dir)
            return
        await activate(conn, "server", version, actor="bootstrap", reason="first start: newest registered")
    if store.server is None or store.server.version != version:
        await _load(store, version)


async def _load(store: ModelStore, version: str) -> None:
    try:
        # Reading and hashing the files is blocking work: off the event loop.
        model, manifest = await anyio.to_thread.run_sync(load_night_model, store.registry_dir / version)
    except (OSError, ValueError, KeyError) as exc:
        # Stay up and say so: /readyz answers 503 and /v1/predict 503 until a good
        # version is activated, rather than a crash loop that also stops ingest.
        log.error("active server model %s cannot be loaded: %s", version, exc)
        return
    # One reference assignment: a request that already took the old model finishes on it.
    store.server_manifest = manifest
    store.server = model
    log.info("server model %s loaded", version)


def _version_key(version: str) -> tuple[int, str]:
    head, _, number = version.rpartition("-")
    return (int(number), head) if number.isdigit() else (-1, version)
