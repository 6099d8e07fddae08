from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from sync_server.bounds import Name


class DeviceCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class DeviceOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    ack_seq: int
    last_seen_at: datetime | None
    created_at: datetime
    # Seqs that will never arrive (dropped by a full queue, corrupt, rejected for good),
    # counted so that nothing is lost silently.
    declared_gap_epochs: int = 0
    # What the device reported with its last upload: incarnation, boot count, drops,
    # queue fill, firmware version, failed uploads.
    health: dict[str, int] | None = None
    disabled: bool = False  # refused at the token exchange and on every request
    # OTA: the edge model the device was last offered (version and rollout number, when),
    # and the model number its uploads say it runs, since when.
    ota_offered_version: str | None = None
    ota_offered_rollout: int | None = None
    ota_offered_at: datetime | None = None
    edge_model_number: int | None = None
    edge_model_since: datetime | None = None


class DeviceCreated(msgspec.Struct):
    device: DeviceOut
    # Shown once: only its argon2id hash is stored.
    secret: str
