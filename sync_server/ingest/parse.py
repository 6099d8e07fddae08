"""Turn a JSON batch or binary blocks into validated epochs plus per-epoch rejections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np

from noctis_contract.blocks import BlockError, decode_blocks
from noctis_contract.features import N_FEATURES, SCHEMA_VERSION, quantize, to_array, validate_epoch
from noctis_contract.session import MAGIC as SESSION_MAGIC
from noctis_contract.session import Gap, GapReason, SessionError, SessionRecord, decode_session
from noctis_contract.stages import N_STAGES
from noctis_contract.wire import IngestBatch, Rejection
from sync_server.bounds import EARLIEST_TIME
from sync_server.errors import InvalidInput, PayloadTooLarge

MAX_SEQ = 2**62  # a device's own seqs; the server adds its incarnation's offset


@dataclass
class Epochs:
    """Valid epochs as columns, features as the contract's 1-byte codes: the form they
    are stored in, so a binary upload goes from the wire to the database unconverted."""

    seqs: list[int]  # the device's own seqs
    starts: list[datetime]
    codes: np.ndarray  # (n, 15) uint8, 255 = missing
    edge_stages: list[int | None]
    edge_model_versions: list[int | None]

    def __len__(self) -> int:
        return len(self.seqs)

    def take(self, rows: list[int]) -> Epochs:
        return Epochs(
            [self.seqs[i] for i in rows],
            [self.starts[i] for i in rows],
            self.codes[rows],
            [self.edge_stages[i] for i in rows],
            [self.edge_model_versions[i] for i in rows],
        )


@dataclass
class ParsedBatch:
    epochs: Epochs
    rejected: list[Rejection]
    session: SessionRecord | None = None


class _Checker:
    """Checks each epoch's seq, start and stage; keeps the valid ones' columns."""

    def __init__(self, max_epochs: int, max_skew_seconds: int) -> None:
        self.max_epochs = max_epochs
        self.latest_start = datetime.now(UTC) + timedelta(seconds=max_skew_seconds)
        self.rejected: list[Rejection] = []
        self.kept: list[int] = []  # positions in the body of the epochs kept
        self.seqs: list[int] = []
        self.starts: list[datetime] = []
        self.edge_stages: list[int | None] = []
        self.edge_model_versions: list[int | None] = []
        self._seen: set[int] = set()

    def check_size(self, count: int) -> None:
        if count > self.max_epochs:
            raise PayloadTooLarge(f"batch of {count} epochs exceeds the limit of {self.max_epochs}; split it")

    def add(
        self,
        position: int,
        seq: int,
        start: datetime,
        edge_stage: int | None,
        edge_model_version: int | None,
        feature_error: str | None = None,
    ) -> None:
        reason = self._reason(seq, start, edge_stage) or feature_error
        if reason:
            # A start in the future may become valid once the clocks agree; nothing else will.
            in_future = start.tzinfo is not None and start > self.latest_start
            final = not in_future and 0 <= seq <= MAX_SEQ
            self.rejected.append(Rejection(seq=seq, reason=reason, final=final))
            return
        self._seen.add(seq)
        self.kept.append(position)
        self.seqs.append(seq)
        self.starts.append(start)
        self.edge_stages.append(edge_stage)
        self.edge_model_versions.append(edge_model_version)

    def _reason(self, seq: int, start: datetime, edge_stage: int | None) -> str | None:
        if not 0 <= seq <= MAX_SEQ:
            return "seq must be between 0 and 2^62"
        if seq in self._seen:
            return "seq appears twice in this batch"
        if start.tzinfo is None:
            return "start needs a UTC offset, e.g. 2026-11-28T23:00:00Z"
        if start < EARLIEST_TIME:
            return f"start {start.isoformat()} is before {EARLIEST_TIME.date()}: device clock not set?"
        if start > self.latest_start:
            return f"start {start.isoformat()} is in the future"
        if edge_stage is not None and not 0 <= edge_stage < N_STAGES:
            return f"edge_stage must be 0..{N_STAGES - 1}"
        return None

    def batch(self, codes: np.ndarray, session: SessionRecord | None) -> ParsedBatch:
        """The kept epochs, with codes holding one row per epoch of the body."""
        epochs = Epochs(self.seqs, self.starts, codes[self.kept], self.edge_stages, self.edge_model_versions)
        return ParsedBatch(epochs, self.rejected, session)


def parse_json(body: bytes, max_epochs: int, max_skew_seconds: int) -> ParsedBatch:
    try:
        batch = msgspec.json.decode(body, type=IngestBatch)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"batch does not match the ingest schema: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from exc
    if batch.schema_version != SCHEMA_VERSION:
        raise InvalidInput(
            f"feature schema version {batch.schema_version} is not supported (server speaks {SCHEMA_VERSION})"
        )
    checker = _Checker(max_epochs, max_skew_seconds)
    checker.check_size(len(batch.epochs))
    for i, epoch in enumerate(batch.epochs):
        feature_error = validate_epoch(epoch.features)
        checker.add(i, epoch.seq, epoch.start, epoch.edge_stage, batch.edge_model_version, feature_error)
    # JSON carries values; stored are the codes a device would have sent for them.
    values = to_array([batch.epochs[i].features for i in checker.kept])
    codes = np.zeros((len(batch.epochs), N_FEATURES), dtype=np.uint8)
    codes[checker.kept] = quantize(values)
    return checker.batch(codes, _json_session(batch))


def _json_session(batch: IngestBatch) -> SessionRecord | None:
    if not batch.incarnation and batch.held_from is None and not batch.gaps:
        return None
    reasons = {reason.label: reason for reason in GapReason}
    gaps = []
    for gap in batch.gaps:
        if not 0 <= gap.first_seq <= gap.last_seq <= MAX_SEQ:
            raise InvalidInput(f"gap {gap.first_seq}..{gap.last_seq}: need 0 <= first_seq <= last_seq <= 2^62")
        if gap.reason not in ("queue_full", "corrupt", "unknown"):
            raise InvalidInput(f"gap reason {gap.reason!r}: one of queue_full, corrupt, unknown")
        gaps.append(Gap(gap.first_seq, gap.last_seq - gap.first_seq + 1, reasons[gap.reason]))
    held_from = batch.held_from or 0
    if not 0 <= held_from <= MAX_SEQ:
        raise InvalidInput("held_from must be between 0 and 2^62")
    return SessionRecord(batch.incarnation, held_from, GapReason.UNKNOWN, gaps)


def parse_blocks(body: bytes, max_epochs: int, max_skew_seconds: int) -> ParsedBatch:
    session, offset = None, 0
    if body[:4] == SESSION_MAGIC:
        try:
            session, offset = decode_session(body)
        except SessionError as exc:
            raise InvalidInput(f"bad session record: {exc}") from exc
    try:
        blocks = decode_blocks(body[offset:]) if offset < len(body) or not session else []
    except BlockError as exc:
        # A block that fails its CRC cannot be trusted in any part: reject the upload
        # whole; the device keeps it in flash and nothing is erased.
        raise InvalidInput(f"bad block: {exc}") from exc
    checker = _Checker(max_epochs, max_skew_seconds)
    checker.check_size(sum(b.count for b in blocks))
    position = 0
    # Every code is a valid value (the quantization range lies inside the valid range):
    # a block's epochs need only their seqs and times checked.
    for block in blocks:
        stages = [None] * block.count if block.edge_stages is None else block.edge_stages.tolist()
        for seq, start, stage in zip(block.seqs(), block.start_times(), stages):
            checker.add(position, seq, datetime.fromtimestamp(start, UTC), stage, block.edge_model_version)
            position += 1
    codes = np.concatenate([b.codes for b in blocks]) if blocks else np.zeros((0, N_FEATURES), dtype=np.uint8)
    return checker.batch(codes, session)
