from __future__ import annotations

import base64
import hashlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.engine import RowMapping

from noctis_contract.ota import firmware_runs, manifest_bytes
from sync_server.db import devices, edge_rollouts
from sync_server.errors import ResourceNotFound, ServiceUnavailable
from sync_server.models.service import ModelStore, active_or_bootstrap
from sync_server.ota.schemas import OtaOffer, PublicKey
from sync_server.settings import Settings
from sync_server.tenancy import TenantRepository

log = logging.getLogger(__name__)


def signing_key(settings: Settings) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(settings.ota_signing_key))


def public_key(settings: Settings) -> PublicKey:
    raw = signing_key(settings).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PublicKey(algorithm="Ed25519", public_key=raw.hex())


def edge_model(store: ModelStore, version: str) -> tuple[dict[str, Any], bytes]:
    """A registered edge model's manifest and bytes, the bytes checked against the manifest."""
    if version not in store.registered_versions("edge"):
        raise ResourceNotFound(f"edge model {version} is not registered")
    try:
        return store.edge_artifact(version)
    except (OSError, ValueError, KeyError) as exc:
        log.error("edge model %s cannot be offered: %s", version, exc)
        raise ServiceUnavailable(f"edge model {version} cannot be offered: its files are missing or damaged") from exc


def bucket(device_id: uuid.UUID) -> int:
    """The device's place 0..99 in every rollout: the same devices go first each time
    (a canary group stays the canary group), spread evenly by a hash of the id."""
    return int.from_bytes(hashlib.sha256(device_id.bytes).digest()[:8], "big") % 100


def includes(rollout: RowMapping, device_id: uuid.UUID, installed_number: int | None, number_of: Any) -> bool:
    """Whether a rollout row decides this device's offer. A paused rollout keeps only the
    devices that already run its model: no new device takes it until it is resumed."""
    if bucket(device_id) >= rollout["percent"]:
        return False
    return bool(rollout["state"] == "active" or installed_number == number_of(rollout["version"]))


async def offered_version(repo: TenantRepository, store: ModelStore, device: RowMapping) -> tuple[str | None, int]:
    """The edge version this device should run and the rollout number that decided it:
    the newest rollout (its tenant's or the fleet's) that includes the device, else the
    active edge model at number 0 (what devices run before any rollout); either one, or
    if the device's firmware cannot install it, the newest it can (runnable)."""
    query = repo.select_with_shared(edge_rollouts).order_by(edge_rollouts.c.id.desc())
    registered = store.registered("edge")

    def number_of(version: str) -> int | None:
        return registered[version].get("version_number") if version in registered else None

    for rollout in (await repo.conn.execute(query)).mappings():
        if includes(rollout, device["id"], device["edge_model_number"], number_of):
            return runnable(registered, rollout["version"], device), rollout["id"]
    active = await active_or_bootstrap(repo.conn, store, "edge", "first OTA request: newest registered")
    return (runnable(registered, active, device) if active else None), 0


def runnable(registered: dict[str, dict[str, Any]], version: str, device: RowMapping) -> str | None:
    """`version` if the device's firmware (as its last upload reported it) installs it,
    else the newest registered edge model (of `registered`: version -> manifest) no newer
    than it that the firmware does: an old device keeps improving as far as it can
    instead of refusing every offer."""
    firmware = (device["health"] or {}).get("firmware_version", 0)
    if version not in registered:
        return version  # refused by edge_model(), as before
    number = registered[version]["version_number"]
    installable = [
        (manifest["version_number"], v)
        for v, manifest in registered.items()
        if manifest["version_number"] <= number and firmware_runs(firmware, manifest.get("lookahead_epochs", 0))
    ]
    return max(installable)[1] if installable else None


async def current_offer(
    repo: TenantRepository, device_id: uuid.UUID, store: ModelStore, settings: Settings
) -> OtaOffer:
    device = await repo.get(devices, device_id, "device")
    version, rollout = await offered_version(repo, store, device)
    if version is None:
        raise ServiceUnavailable("no edge model is registered that this device's firmware can run")
    registry_manifest, model = edge_model(store, version)
    manifest = manifest_bytes(
        registry_manifest["version_number"],
        model,
        registry_manifest["budget"]["tensor_arena_bytes"],
        rollout,
        registry_manifest.get("lookahead_epochs", 0),  # 0 for models registered before lookaheads
    )
    signature = signing_key(settings).sign(manifest)
    if (device["ota_offered_version"], device["ota_offered_rollout"]) != (version, rollout):
        # Recorded when the offer changes, not on every poll: the devices row announces its updates.
        values = {"ota_offered_version": version, "ota_offered_rollout": rollout, "ota_offered_at": datetime.now(UTC)}
        await repo.update(devices, device_id, **values)
    return OtaOffer(
        version=version,
        model_version=registry_manifest["version_number"],
        size=len(model),
        manifest=base64.b64encode(manifest).decode(),
        signature=base64.b64encode(signature).decode(),
        download=f"/v1/ota/models/{version}",
        rollout=rollout,
    )
