"""The flash and binary-upload block format.

One block fits one 4 KiB flash sector and holds a run of epochs with consecutive
seqs whose start times are exactly 30 s apart (the device closes a block and opens a
new one whenever the run breaks). Little-endian layout:

    offset size field
    0      4    magic b"NCTQ"
    4      1    format version (1)
    5      1    flags (bit 0: edge stages present)
    6      2    count of epochs
    8      4    first seq
    12     4    first start time, Unix seconds UTC
    16     4    edge model version
    20     4    CRC-32 (IEEE, zlib) of bytes 0..19 and the payload
    24     15*count   feature codes, epoch after epoch (255 = missing)
    ...    ceil(count/4)  edge stages, 2 bits each, first epoch in the low bits

With 4096-byte sectors a block holds 267 epochs: 15.34 bytes per epoch, headers and
stages included, so an 8 MiB region holds 2048 * 267 = 546,816 epochs (>= 189 days).
An upload body is any number of blocks back to back.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from noctis_contract.features import EPOCH_SECONDS, N_FEATURES

MAGIC = b"NCTQ"
FORMAT_VERSION = 1
FLAG_EDGE_STAGES = 0x01
SECTOR_BYTES = 4096
HEADER = struct.Struct("<4sBBHIIII")
HEADER_BYTES = HEADER.size  # 24
FLASH_REGION_BYTES = 8 * 1024 * 1024


def block_bytes(count: int, with_stages: bool = True) -> int:
    return HEADER_BYTES + N_FEATURES * count + (((count + 3) // 4) if with_stages else 0)


def _max_epochs_per_sector() -> int:
    count = (SECTOR_BYTES - HEADER_BYTES) // N_FEATURES
    while block_bytes(count) > SECTOR_BYTES:
        count -= 1
    return count


MAX_EPOCHS_PER_BLOCK = _max_epochs_per_sector()  # 267

# The device's flash queue keeps one sector for its identity and one always free
# (edge_firmware/include/noctis/flash_queue.h). Recording around the clock, its oldest
# epoch is this many days old when the queue is full: the longest a device can stay
# offline and lose nothing, and so the shortest retention the server may keep.
QUEUE_EPOCHS = (FLASH_REGION_BYTES // SECTOR_BYTES - 2) * MAX_EPOCHS_PER_BLOCK  # 546,282
OFFLINE_HORIZON_DAYS = -(-QUEUE_EPOCHS * EPOCH_SECONDS // 86400)  # 190 (189.7 rounded up)


class BlockError(ValueError):
    """A block that cannot be trusted: truncated, wrong magic or version, bad CRC."""


@dataclass(frozen=True, slots=True)
class Block:
    first_seq: int
    first_start: int  # Unix seconds UTC
    edge_model_version: int
    codes: np.ndarray  # (count, 15) uint8
    edge_stages: np.ndarray | None  # (count,) uint8 in 0..3, or None

    @property
    def count(self) -> int:
        return int(self.codes.shape[0])

    def seqs(self) -> range:
        return range(self.first_seq, self.first_seq + self.count)

    def start_times(self) -> list[int]:
        return [self.first_start + EPOCH_SECONDS * i for i in range(self.count)]


def _pack_stages(stages: np.ndarray) -> bytes:
    padded = np.zeros(((len(stages) + 3) // 4) * 4, dtype=np.uint8)
    padded[: len(stages)] = stages
    quads = padded.reshape(-1, 4)
    packed = quads[:, 0] | (quads[:, 1] << 2) | (quads[:, 2] << 4) | (quads[:, 3] << 6)
    return packed.astype(np.uint8).tobytes()


def _unpack_stages(data: bytes, count: int) -> np.ndarray:
    packed = np.frombuffer(data, dtype=np.uint8)
    quads = np.stack([(packed >> shift) & 0x3 for shift in (0, 2, 4, 6)], axis=1)
    return quads.reshape(-1)[:count].astype(np.uint8)


def encode_block(block: Block) -> bytes:
    count = block.count
    if not 1 <= count <= MAX_EPOCHS_PER_BLOCK:
        raise ValueError(f"a block holds 1..{MAX_EPOCHS_PER_BLOCK} epochs, not {count}")
    codes = np.ascontiguousarray(block.codes, dtype=np.uint8)
    if codes.shape != (count, N_FEATURES):
        raise ValueError(f"codes must have shape (count, {N_FEATURES})")
    payload = codes.tobytes()
    flags = 0
    if block.edge_stages is not None:
        stages = np.asarray(block.edge_stages, dtype=np.uint8)
        if stages.shape != (count,) or int(stages.max(initial=0)) > 3:
            raise ValueError("edge stages must be one value in 0..3 per epoch")
        payload += _pack_stages(stages)
        flags |= FLAG_EDGE_STAGES
    head = HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        flags,
        count,
        block.first_seq,
        block.first_start,
        block.edge_model_version,
        0,
    )[: HEADER_BYTES - 4]
    crc = zlib.crc32(head + payload)
    return head + struct.pack("<I", crc) + payload


def decode_block(data: bytes | memoryview, offset: int = 0) -> tuple[Block, int]:
    """Decode the block at ``offset``; return it and the offset just past it."""
    view = memoryview(data)
    if len(view) - offset < HEADER_BYTES:
        raise BlockError(f"truncated block header at byte {offset}")
    magic, version, flags, count, first_seq, first_start, model_version, crc = HEADER.unpack_from(view, offset)
    if magic != MAGIC:
        raise BlockError(f"bad magic at byte {offset}")
    if version != FORMAT_VERSION:
        raise BlockError(f"unsupported block format version {version}")
    if not 1 <= count <= MAX_EPOCHS_PER_BLOCK:
        raise BlockError(f"block count {count} outside 1..{MAX_EPOCHS_PER_BLOCK}")
    with_stages = bool(flags & FLAG_EDGE_STAGES)
    end = offset + block_bytes(count, with_stages)
    if end > len(view):
        raise BlockError(f"truncated block at byte {offset}: needs {end - offset} bytes")
    head = view[offset : offset + HEADER_BYTES - 4]
    payload = view[offset + HEADER_BYTES : end]
    if zlib.crc32(payload, zlib.crc32(head)) != crc:
        raise BlockError(f"CRC mismatch in block at byte {offset}")
    features_end = N_FEATURES * count
    codes = np.frombuffer(payload[:features_end], dtype=np.uint8).reshape(count, N_FEATURES)
    stages = _unpack_stages(bytes(payload[features_end:]), count) if with_stages else None
    return Block(first_seq, first_start, model_version, codes.copy(), stages), end


def decode_blocks(data: bytes) -> list[Block]:
    """Decode an upload body: blocks back to back, all of it valid or BlockError."""
    blocks: list[Block] = []
    offset = 0
    while offset < len(data):
        block, offset = decode_block(data, offset)
        blocks.append(block)
    if not blocks:
        raise BlockError("empty upload: no blocks")
    return blocks
