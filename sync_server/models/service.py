"""Which model version is active (in the database, audited) and the loaded models.

The active version per kind is the latest row of ``model_activations``, so every
worker and replica agrees. A worker holds its loaded model in ``ModelStore``; a
swap replaces one reference, so requests in flight finish on the model they began with.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from noctis_contract.features import N_FEATURES, dequantize
from noctis_contract.night_model import NightModel, load_night_model
from sync_server.db import model_activations

log = logging.getLogger(__name__)


@dataclass
class ModelStore:
    registry_dir: Path
    server: NightModel | None = None
    server_manifest: dict[str, object] = field(default_factory=dict)
    # The active server version this worker could not load, and why: not ready while so.
    failed: tuple[str, str] | None = None
    _edge_artifacts: dict[str, tuple[dict[str, Any], bytes]] = field(default_factory=dict)

    def manifest(self, version: str) -> dict[str, Any]:
        """A registered version's manifest (its file hashes, metrics, budget…)."""
        manifest: dict[str, Any] = json.loads((self.registry_dir / version / "manifest.json").read_text())
        return manifest

    def registered(self, kind: str) -> dict[str, dict[str, Any]]:
        """Every registered version of a kind with its manifest, each read once."""
        manifests = {
            path.parent.name: self.manifest(path.parent.name) for path in self.registry_dir.glob("*/manifest.json")
        }
        return {version: manifests[version] for version in sorted(manifests) if manifests[version].get("kind") == kind}

    def registered_versions(self, kind: str) -> list[str]:
        return list(self.registered(kind))

    def edge_artifact(self, version: str) -> tuple[dict[str, Any], bytes]:
        """A registered edge model's manifest and bytes, checked against the manifest's
        hash once per version (registered versions never change)."""
        if version not in self._edge_artifacts:
            manifest = self.manifest(version)
            model = (self.registry_dir / version / "model.tflite").read_bytes()
            if hashlib.sha256(model).hexdigest() != manifest["files"]["model.tflite"]:
                raise ValueError(f"edge model {version} does not match its manifest")
            self._edge_artifacts[version] = (manifest, model)
        return self._edge_artifacts[version]

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


async def activate(
    conn: AsyncConnection, kind: str, version: str, actor: str, reason: str, action: str = "promote"
) -> None:
    """Make version the active one of its kind (action: bootstrap | promote | rollback)."""
    values = {"kind": kind, "version": version, "actor": actor, "reason": reason, "action": action}
    await conn.execute(model_activations.insert().values(**values))


# Any constant every worker agrees on: the first activation is written once.
_BOOTSTRAP_LOCK = 0x4E4F4354  # "NOCT"


async def active_or_bootstrap(conn: AsyncConnection, store: ModelStore, kind: str, reason: str) -> str | None:
    """The active version of a kind; on a fresh database, the newest registered one,
    activated once however many workers ask at the same moment (None if none exists)."""
    version = await active_version(conn, kind)
    if version is None and conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises
        await conn.execute(select(func.pg_advisory_xact_lock(_BOOTSTRAP_LOCK)))
        version = await active_version(conn, kind)
    if version is None:
        version = store.newest_version(kind)
        if version is not None:
            await activate(conn, kind, version, actor="bootstrap", reason=reason, action="bootstrap")
    return version


async def load_active_server_model(conn: AsyncConnection, store: ModelStore) -> None:
    """Follow the database: load the active server model unless it is the one in memory
    or one this worker already failed to load."""
    version = await active_or_bootstrap(conn, store, "server", "first start: newest registered")
    if version is None:
        if store.server is None:
            log.error("no server model in %s: /v1/predict will answer 503", store.registry_dir)
        return
    if store.server is not None and store.server.version == version:
        store.failed = None
        return
    if store.failed is None or store.failed[0] != version:
        await _load(store, version)


def load_and_warm(directory: Path) -> tuple[NightModel, dict[str, Any]]:
    """Load a server model and score one night with it, so that its first request finds
    it warm, and a model that loads but cannot score is found out here."""
    model, manifest = load_night_model(directory)
    model.predict_proba(dequantize(np.full((120, N_FEATURES), 128, dtype=np.uint8)))
    return model, manifest


async def _load(store: ModelStore, version: str) -> None:
    try:
        # Reading, hashing and warming are blocking work: off the event loop.
        model, manifest = await anyio.to_thread.run_sync(load_and_warm, store.registry_dir / version)
    except Exception as exc:  # any failure to load: the worker stays up and says so
        # Not ready (/readyz answers 503 with the reason) and still serving the model it
        # has, rather than a crash loop that also stops ingest. Tried again only once
        # another version is activated.
        store.failed = (version, f"{type(exc).__name__}: {exc}")
        log.error("active server model %s cannot be loaded: %s", version, exc)
        return
    # One reference assignment: a request that already took the old model finishes on it.
    store.server_manifest = manifest
    store.server = model
    store.failed = None
    log.info("server model %s loaded", version)


def _version_key(version: str) -> tuple[int, str]:
    head, _, number = version.rpartition("-")
    return (int(number), head) if number.isdigit() else (-1, version)
