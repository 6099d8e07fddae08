"""The firmware's flash queue semantics (edge_firmware/include/noctis/flash_queue.h), in Python.

Block-level rather than byte-level: the same continuity rule for blocks, the same
capacity (one sector always free), the same acknowledgement rule (erase whole blocks at
or below ack_seq), the same drop-oldest when full, and uploads in the contract format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from noctis_contract.blocks import FLASH_REGION_BYTES, MAX_EPOCHS_PER_BLOCK, SECTOR_BYTES, Block, encode_block
from noctis_contract.features import EPOCH_SECONDS

SECTORS = FLASH_REGION_BYTES // SECTOR_BYTES


@dataclass
class _OpenBlock:
    first_seq: int
    first_start: int
    model_version: int
    codes: list[np.ndarray] = field(default_factory=list)
    stages: list[int | None] = field(default_factory=list)

    def continues_with(self, seq: int, start: int, model_version: int) -> bool:
        n = len(self.codes)
        return (
            n < MAX_EPOCHS_PER_BLOCK
            and seq == self.first_seq + n
            and start == self.first_start + EPOCH_SECONDS * n
            and model_version == self.model_version
        )

    def block(self) -> Block:
        stages = None if any(s is None for s in self.stages) else np.array(self.stages, dtype=np.uint8)
        return Block(self.first_seq, self.first_start, self.model_version, np.stack(self.codes), stages)


class FlashQueue:
    def __init__(self, sectors: int = SECTORS) -> None:
        self.sectors = sectors
        self.blocks: list[_OpenBlock] = []  # oldest first; the last one may still be open
        self.dropped = 0

    @property
    def pending(self) -> int:
        return sum(len(b.codes) for b in self.blocks)

    def append(self, seq: int, start: int, codes: np.ndarray, stage: int | None, model_version: int) -> None:
        if not (self.blocks and self.blocks[-1].continues_with(seq, start, model_version)):
            if len(self.blocks) >= self.sectors - 1:
                self.dropped += len(self.blocks.pop(0).codes)
            self.blocks.append(_OpenBlock(seq, start, model_version))
        self.blocks[-1].codes.append(np.asarray(codes, dtype=np.uint8))
        self.blocks[-1].stages.append(stage)

    def read_batch(self, max_bytes: int) -> tuple[bytes, int]:
        """Oldest-first whole blocks that fit; and the last seq in them (-1 if none)."""
        body, last_seq = b"", -1
        for block in self.blocks:
            encoded = encode_block(block.block())
            if len(body) + len(encoded) > max_bytes:
                break
            body += encoded
            last_seq = block.first_seq + len(block.codes) - 1
        return body, last_seq

    def acknowledge(self, ack_seq: int) -> None:
        while self.blocks and self.blocks[0].first_seq + len(self.blocks[0].codes) - 1 <= ack_seq:
            self.blocks.pop(0)
