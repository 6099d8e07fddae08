import pytest

from noctis_contract.session import (
    FIXED_BYTES,
    DeviceHealth,
    Gap,
    GapReason,
    SessionError,
    SessionRecord,
    decode_session,
    encode_session,
)


def test_round_trip_with_gaps_and_health():
    record = SessionRecord(
        incarnation=0xDEADBEEF,
        held_from=1234,
        reason_below=GapReason.QUEUE_FULL,
        gaps=[Gap(2000, 267, GapReason.CORRUPT), Gap(5000, 3, GapReason.UNKNOWN)],
        health=DeviceHealth(3, 90, 1, 500, 546282, 2, 0, model_version=7, free_heap=151_000, rssi_dbm=-67),
    )
    data = encode_session(record) + b"rest"
    decoded, end = decode_session(data)
    assert decoded == record and data[end:] == b"rest" and end == FIXED_BYTES + 24


def test_a_version_2_record_from_a_device_not_yet_updated_is_still_read():
    import struct
    import zlib

    from noctis_contract.session import FIXED_V2

    fixed = FIXED_V2.pack(b"NCTS", 2, GapReason.QUEUE_FULL, 1, 9, 100, 3, 90, 1, 500, 546282, 2, 0)
    gaps = struct.pack("<IIB3x", 40, 5, GapReason.CORRUPT)
    data = fixed + struct.pack("<I", zlib.crc32(gaps, zlib.crc32(fixed))) + gaps
    decoded, end = decode_session(data + b"blocks")
    assert end == len(data) and decoded.incarnation == 9 and decoded.gaps == [Gap(40, 5, GapReason.CORRUPT)]
    assert decoded.health == DeviceHealth(3, 90, 1, 500, 546282, 2, 0)  # model, heap, RSSI unknown


@pytest.mark.parametrize("cut", [10, FIXED_BYTES + 5])
def test_truncated_or_damaged_records_are_refused(cut):
    data = encode_session(SessionRecord(1, 0, gaps=[Gap(1, 2, GapReason.CORRUPT)]))
    with pytest.raises(SessionError):
        decode_session(data[:cut])
    damaged = bytearray(data)
    damaged[13] ^= 1
    with pytest.raises(SessionError, match="CRC"):
        decode_session(bytes(damaged))
