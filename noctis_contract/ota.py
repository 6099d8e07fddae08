"""The signed edge-model manifest that devices verify before installing a model.

56 bytes, little-endian: magic b"NMOD", format 1 (u32), model version (u32), model size
(u32), tensor arena bytes (u32), sha256 of the model (32 bytes), rollout number (u32;
zero in manifests from before staged rollouts, where these bytes were reserved).
The server signs these bytes with Ed25519; the firmware (edge_firmware ota.h) checks the
signature before it accepts a byte of the model, and installs only a rollout number
higher than any it has seen: an old manifest cannot be replayed, and a rollback (a
higher number for an older model) is a signed downgrade.
"""

from __future__ import annotations

import hashlib
import struct

MAGIC = b"NMOD"
FORMAT = 1
MANIFEST = struct.Struct("<4sIIII32sI")
MANIFEST_BYTES = MANIFEST.size  # 56


def manifest_bytes(model_version: int, model: bytes, arena_bytes: int, rollout: int = 0) -> bytes:
    digest = hashlib.sha256(model).digest()
    return MANIFEST.pack(MAGIC, FORMAT, model_version, len(model), arena_bytes, digest, rollout)


def parse_manifest(data: bytes) -> dict[str, object]:
    magic, fmt, version, size, arena, digest, rollout = MANIFEST.unpack(data)
    if magic != MAGIC or fmt != FORMAT:
        raise ValueError("not a Noctis model manifest")
    return {"model_version": version, "size": size, "arena_bytes": arena, "sha256": digest.hex(), "rollout": rollout}
