from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec


class DeviceCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class DeviceOut(msgspec.Struct):
    id: uuid.UUID
    name: str
    ack_seq: int
    last_seen_at: datetime | None
    created_at: datetime


class DeviceCreated(msgspec.Struct):
    device: DeviceOut
    # Shown once: only its argon2id hash is stored.
    secret: str
