from __future__ import annotations

import msgspec


class OtaOffer(msgspec.Struct):
    """The active edge model, as a device needs it to decide and to verify."""

    version: str
    model_version: int  # the number the device compares with its own and writes into blocks
    size: int
    manifest: str  # base64 of the 56 signed bytes (noctis_contract.ota)
    signature: str  # base64 Ed25519 signature of the manifest
    download: str  # path of the model bytes
    rollout: int = 0  # the rollout number signed into the manifest; the device installs only higher ones


class PublicKey(msgspec.Struct):
    algorithm: str
    public_key: str  # hex; provisioned into devices so they can verify manifests
