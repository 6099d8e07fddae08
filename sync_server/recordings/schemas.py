from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec

from sync_server.bounds import Label, Name

MAX_NIGHT_EPOCHS = 2 * 60 * 24  # a day of 30-s epochs


class RecordingCreate(msgspec.Struct, forbid_unknown_fields=True):
    device_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None = None  # open until set: the night is still running
    label: Label = ""


class RecordingUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """What PATCH may change: the label, and the end of the night (null: open again)."""

    label: Label | msgspec.UnsetType = msgspec.UNSET
    ended_at: datetime | msgspec.UnsetType | None = msgspec.UNSET


class RecordingOut(msgspec.Struct):
    id: uuid.UUID
    device_id: uuid.UUID
    started_at: datetime
    ended_at: datetime | None
    label: str
    epoch_count: int


class LabelIn(msgspec.Struct, forbid_unknown_fields=True):
    start: datetime  # the epoch's start, as stored
    stage: Annotated[str, msgspec.Meta(max_length=16)]  # wake, light, deep, rem, or W, N1-N4, R


class LabelsIn(msgspec.Struct, forbid_unknown_fields=True):
    scorer: Name  # who or what scored them: "PSG, lab A, RPSGT J. Doe"
    epochs: Annotated[list[LabelIn], msgspec.Meta(min_length=1, max_length=MAX_NIGHT_EPOCHS)]


class StageLabel(msgspec.Struct):
    start: datetime
    stage: str | None  # wake, light, deep or rem; None: not labelled


class LabelsOut(msgspec.Struct):
    recording_id: uuid.UUID
    scorers: list[str]
    labelled: int
    epochs: list[StageLabel]  # every stored epoch of the recording; stage None where unlabelled
