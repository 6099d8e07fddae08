"""The signed edge-model manifest that devices verify before installing a model.

Little-endian: magic b"NMOD", format (u32), model version (u32), model size (u32), tensor
arena bytes (u32), sha256 of the model (32 bytes), rollout number (u32; zero in manifests
from before staged rollouts, where these bytes were reserved): 56 bytes, format 1.
Format 2 adds the model's lookahead in epochs (u32; its output on the window ending at
an epoch is the stage of the epoch that many before it): 60 bytes. A model without a
lookahead keeps format 1, which every firmware reads; firmware from before lookaheads
(firmware_version 1) refuses format 2, so it never runs a model whose stages it would
place on the wrong epochs.

The server signs these bytes with Ed25519; the firmware (edge_firmware ota.h) checks the
signature before it accepts a byte of the model, and installs only a rollout number
higher than any it has seen: an old manifest cannot be replayed, and a rollback (a
higher number for an older model) is a signed downgrade.
"""

from __future__ import annotations

import hashlib
import struct

MAGIC = b"NMOD"
MANIFEST = struct.Struct("<4sIIII32sI")  # format 1
LOOKAHEAD = struct.Struct("<I")  # what format 2 adds
MANIFEST_BYTES = MANIFEST.size  # 56; format 2: 60
FIRST_FIRMWARE_WITH_LOOKAHEAD = 2


def firmware_runs(firmware_version: int, lookahead: int) -> bool:
    """Whether a device reporting this firmware version installs a model with this
    lookahead. 0 is a device that has not reported one yet: taken to be current."""
    return lookahead == 0 or not 0 < firmware_version < FIRST_FIRMWARE_WITH_LOOKAHEAD


def manifest_bytes(model_version: int, model: bytes, arena_bytes: int, rollout: int = 0, lookahead: int = 0) -> bytes:
    digest = hashlib.sha256(model).digest()
    fmt = 2 if lookahead else 1
    head = MANIFEST.pack(MAGIC, fmt, model_version, len(model), arena_bytes, digest, rollout)
    return head + LOOKAHEAD.pack(lookahead) if lookahead else head


def parse_manifest(data: bytes) -> dict[str, object]:
    if len(data) < MANIFEST_BYTES:
        raise ValueError("not a Noctis model manifest")
    magic, fmt, version, size, arena, digest, rollout = MANIFEST.unpack(data[:MANIFEST_BYTES])
    lengths = {1: MANIFEST_BYTES, 2: MANIFEST_BYTES + LOOKAHEAD.size}
    if magic != MAGIC or lengths.get(fmt) != len(data):
        raise ValueError("not a Noctis model manifest")
    (lookahead,) = LOOKAHEAD.unpack(data[MANIFEST_BYTES:]) if fmt == 2 else (0,)
    return {
        "model_version": version,
        "size": size,
        "arena_bytes": arena,
        "sha256": digest.hex(),
        "rollout": rollout,
        "lookahead_epochs": lookahead,
    }
