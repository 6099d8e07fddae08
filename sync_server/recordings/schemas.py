from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec


class RecordingCreate(msgspec.Struct, forbid_unknown_fields=True):
    device_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None = None  # open until set: the night is still running
    label: Annotated[str, msgspec.Meta(max_length=200)] = ""


class RecordingOut(msgspec.Struct):
    id: uuid.UUID
    device_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None
    label: str
    epoch_count: int
