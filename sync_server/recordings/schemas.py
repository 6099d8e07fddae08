from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from sync_server.bounds import Label


class RecordingCreate(msgspec.Struct, forbid_unknown_fields=True):
    device_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None = None  # open until set: the night is still running
    label: Label = ""


class RecordingOut(msgspec.Struct):
    id: uuid.UUID
    device_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None
    label: str
    epoch_count: int
