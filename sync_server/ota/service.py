from __future__ import annotations

import base64
import logging
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.ext.asyncio import AsyncConnection

from noctis_contract.ota import manifest_bytes
from sync_server.errors import ResourceNotFound, ServiceUnavailable
from sync_server.models.service import ModelStore, active_or_bootstrap
from sync_server.ota.schemas import OtaOffer, PublicKey
from sync_server.settings import Settings

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


async def current_offer(conn: AsyncConnection, store: ModelStore, settings: Settings) -> OtaOffer:
    version = await active_or_bootstrap(conn, store, "edge", "first OTA request: newest registered")
    if version is None:
        raise ServiceUnavailable("no edge model is registered")
    registry_manifest, model = edge_model(store, version)
    manifest = manifest_bytes(
        registry_manifest["version_number"], model, registry_manifest["budget"]["tensor_arena_bytes"]
    )
    signature = signing_key(settings).sign(manifest)
    return OtaOffer(
        version=version,
        model_version=registry_manifest["version_number"],
        size=len(model),
        manifest=base64.b64encode(manifest).decode(),
        signature=base64.b64encode(signature).decode(),
        download=f"/v1/ota/models/{version}",
    )
