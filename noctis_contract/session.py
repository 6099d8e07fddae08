"""Sync protocol v2: the session record a device puts in front of its blocks.

An upload body is ``[session record] block block …``. The record says who is
talking (the device's *incarnation*: a random id drawn whenever the device starts a
new seq space, e.g. after losing its non-volatile state), which seqs it no longer
holds and why, and how it is doing. Little-endian layout:

    offset size field
    0      4    magic b"NCTS"
    4      1    version (3; version 2 ends its fixed part after consecutive failures)
    5      1    reason for the seqs below held_from (GapReason)
    6      2    number of gap entries that follow the fixed part
    8      4    incarnation (nonzero)
    12     4    held_from: the device holds no seq below this one and never sends one again
    16     4    boot count
    20     4    epochs dropped because the queue was full (since the queue was formatted)
    24     4    blocks erased as corrupt at boot (idem)
    28     4    epochs waiting in the flash queue
    32     4    queue capacity in epochs
    36     4    firmware version
    40     4    consecutive failed uploads before this one
    44     4    edge model version running (the manifest's model number)     } version 3
    48     4    free heap, bytes                                              } only
    52     4    Wi-Fi RSSI, dBm (signed; 0 = not known)                       }
    56     4    CRC-32 (zlib) of bytes 0..55 (version 2: 0..43) and the gap entries
    60     12*n gap entries: first seq u32, count u32, reason u8, 3 zero bytes (version 2: at 48)

Seqs in the record and in the blocks behind it are the incarnation's own (0, 1, 2, …);
the server maps them onto the device's one seq line. Without a record (version-1
devices, JSON batches) the incarnation is 0.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass, field

MAGIC = b"NCTS"
VERSION = 3  # what devices write; version 2 is still read (devices not yet updated)
FIXED_V2 = struct.Struct("<4sBBHIIIIIIIII")
FIXED = struct.Struct("<4sBBHIIIIIIIIIIIi")
FIXED_BYTES = FIXED.size + 4  # 60, CRC included
GAP = struct.Struct("<IIB3x")
MAX_GAPS = 64


class GapReason(enum.IntEnum):
    UNKNOWN = 0
    QUEUE_FULL = 1  # the ring overwrote its oldest block after months offline
    CORRUPT = 2  # a block failed its CRC at boot and was erased
    REJECTED = 3  # the server refused the epoch for a reason that will never change (server-side only)
    INCARNATION_ENDED = 4  # the device started a new seq space; the old one's missing seqs are gone

    @property
    def label(self) -> str:
        return self.name.lower()


class SessionError(ValueError):
    """A session record that cannot be trusted: truncated, wrong version, bad CRC."""


@dataclass(frozen=True, slots=True)
class Gap:
    first_seq: int
    count: int
    reason: GapReason


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    boot_count: int = 0
    dropped_epochs: int = 0
    corrupt_blocks: int = 0
    queue_pending: int = 0
    queue_capacity: int = 0
    firmware_version: int = 0
    consecutive_failures: int = 0
    model_version: int = 0
    free_heap: int = 0
    rssi_dbm: int = 0


@dataclass(frozen=True, slots=True)
class SessionRecord:
    incarnation: int
    held_from: int
    reason_below: GapReason = GapReason.UNKNOWN
    gaps: list[Gap] = field(default_factory=list)
    health: DeviceHealth = DeviceHealth()


def encode_session(record: SessionRecord) -> bytes:
    if not record.incarnation:
        raise ValueError("incarnation 0 is reserved for devices without a session record")
    if len(record.gaps) > MAX_GAPS:
        raise ValueError(f"at most {MAX_GAPS} gaps per record")
    h = record.health
    fixed = FIXED.pack(
        MAGIC,
        VERSION,
        record.reason_below,
        len(record.gaps),
        record.incarnation,
        record.held_from,
        h.boot_count,
        h.dropped_epochs,
        h.corrupt_blocks,
        h.queue_pending,
        h.queue_capacity,
        h.firmware_version,
        h.consecutive_failures,
        h.model_version,
        h.free_heap,
        h.rssi_dbm,
    )
    gaps = b"".join(GAP.pack(g.first_seq, g.count, g.reason) for g in record.gaps)
    return fixed + struct.pack("<I", zlib.crc32(gaps, zlib.crc32(fixed))) + gaps


def _reason(value: int) -> GapReason:
    try:
        return GapReason(value)
    except ValueError:
        return GapReason.UNKNOWN


def decode_session(data: bytes | memoryview) -> tuple[SessionRecord, int]:
    """The record at the start of ``data`` and the offset just past it."""
    view = memoryview(data)
    if len(view) < 5:
        raise SessionError("truncated session record")
    layout = {2: FIXED_V2, 3: FIXED}.get(view[4])
    if layout is None:
        raise SessionError(f"unsupported session record version {view[4]}")
    fixed_bytes = layout.size + 4
    if len(view) < fixed_bytes:
        raise SessionError("truncated session record")
    magic, _, reason_below, n_gaps, incarnation, held_from, *health = layout.unpack_from(view)
    if magic != MAGIC:
        raise SessionError("bad session magic")
    if n_gaps > MAX_GAPS:
        raise SessionError(f"{n_gaps} gap entries: at most {MAX_GAPS}")
    end = fixed_bytes + GAP.size * n_gaps
    if len(view) < end:
        raise SessionError("truncated session record gaps")
    (crc,) = struct.unpack_from("<I", view, layout.size)
    if zlib.crc32(view[fixed_bytes:end], zlib.crc32(view[: layout.size])) != crc:
        raise SessionError("CRC mismatch in session record")
    if not incarnation:
        raise SessionError("incarnation 0 is reserved")
    gaps = []
    for i in range(n_gaps):
        first, count, reason = GAP.unpack_from(view, fixed_bytes + GAP.size * i)
        if count == 0 or first + count > 2**32:
            raise SessionError(f"gap entry {i} is empty or runs past 2^32")
        gaps.append(Gap(first, count, _reason(reason)))
    record = SessionRecord(incarnation, held_from, _reason(reason_below), gaps, DeviceHealth(*health))
    return record, end
