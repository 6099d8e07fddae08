"""JSON wire formats shared by the devices, the server and the simulator."""

from __future__ import annotations

from datetime import datetime

import msgspec

from noctis_contract.features import SCHEMA_VERSION


class EpochIn(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    start: datetime
    # 15 values in schema order; null for missing. Length and ranges are checked per
    # epoch so that one bad epoch is rejected with its reason and the rest are stored.
    features: list[float | None]
    edge_stage: int | None = None


class IngestBatch(msgspec.Struct, forbid_unknown_fields=True):
    epochs: list[EpochIn]
    schema_version: int = SCHEMA_VERSION
    edge_model_version: int | None = None


class Rejection(msgspec.Struct):
    seq: int
    reason: str


class IngestAck(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[Rejection]
    # Highest seq up to which every epoch of this device is stored (-1: none yet).
    # The device erases its flash queue up to here and no further.
    ack_seq: int
