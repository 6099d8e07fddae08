"""JSON wire formats shared by the devices, the server and the simulator."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from noctis_contract.features import SCHEMA_VERSION

UInt32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]  # the device's model versions and incarnations


class EpochIn(msgspec.Struct, forbid_unknown_fields=True):
    seq: int
    start: datetime
    # 15 values in schema order; null for missing. Length and ranges are checked per
    # epoch so that one bad epoch is rejected with its reason and the rest are stored.
    features: list[float | None]
    edge_stage: int | None = None


class GapIn(msgspec.Struct, forbid_unknown_fields=True):
    """Seqs first_seq..last_seq that the device no longer holds (see noctis_contract.session)."""

    first_seq: int
    last_seq: int
    reason: str = "unknown"  # queue_full | corrupt | unknown


class IngestBatch(msgspec.Struct, forbid_unknown_fields=True):
    epochs: list[EpochIn]
    schema_version: int = SCHEMA_VERSION
    edge_model_version: UInt32 | None = None
    # Sync v2, as in the binary session record: the device's seq space, the seq below
    # which it holds nothing, and the holes it knows of.
    incarnation: UInt32 = 0
    held_from: int | None = None
    gaps: list[GapIn] = []


class Rejection(msgspec.Struct):
    seq: int
    reason: str
    # True when the epoch can never be stored (out of range, unreadable): the server
    # records its seq as a gap and the watermark passes it. False (e.g. a start in the
    # future, a seq stored with another start): keep it and send it again later.
    final: bool = False


class IngestAck(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[Rejection]
    # Highest seq of this incarnation up to which every epoch is stored or declared gone
    # (-1: none yet). The device erases its flash queue up to here and no further.
    ack_seq: int
    incarnation: int = 0
    declared_gap_epochs: int = 0  # seqs newly recorded as gone by this upload
    # The server's limits: the device sizes its batches by them.
    max_batch_epochs: int = 0
    max_body_bytes: int = 0
