import numpy as np
import pytest

from noctis_contract.blocks import (
    FLASH_REGION_BYTES,
    HEADER_BYTES,
    MAX_EPOCHS_PER_BLOCK,
    SECTOR_BYTES,
    Block,
    BlockError,
    block_bytes,
    decode_block,
    decode_blocks,
    encode_block,
)
from noctis_contract.features import EPOCH_SECONDS, FEATURES, N_FEATURES, dequantize, quantize

EPOCHS_IN_189_DAYS = 189 * 24 * 3600 // EPOCH_SECONDS


def random_block(rng, count, first_seq=0, stages=True):
    codes = rng.integers(0, 256, size=(count, N_FEATURES), dtype=np.uint8)
    edge = rng.integers(0, 4, size=count, dtype=np.uint8) if stages else None
    return Block(first_seq, 1_795_000_000, 7, codes, edge)


def test_eight_mebibytes_hold_189_days_of_epochs():
    assert EPOCHS_IN_189_DAYS == 544_320
    sectors = FLASH_REGION_BYTES // SECTOR_BYTES
    assert block_bytes(MAX_EPOCHS_PER_BLOCK) <= SECTOR_BYTES
    # One sector is always being erased in a ring: count the capacity without it.
    assert (sectors - 1) * MAX_EPOCHS_PER_BLOCK >= EPOCHS_IN_189_DAYS
    assert SECTOR_BYTES / MAX_EPOCHS_PER_BLOCK <= 15.4


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 100, MAX_EPOCHS_PER_BLOCK])
@pytest.mark.parametrize("stages", [True, False])
def test_encode_decode_round_trip(count, stages):
    rng = np.random.default_rng(count)
    block = random_block(rng, count, first_seq=123_456, stages=stages)
    data = encode_block(block)
    assert len(data) == block_bytes(count, stages)
    decoded, end = decode_block(data)
    assert end == len(data)
    assert (decoded.first_seq, decoded.first_start, decoded.edge_model_version) == (123_456, 1_795_000_000, 7)
    assert np.array_equal(decoded.codes, block.codes)
    if stages:
        assert np.array_equal(decoded.edge_stages, block.edge_stages)
    else:
        assert decoded.edge_stages is None


def test_features_round_trip_through_a_block_within_one_step():
    rng = np.random.default_rng(3)
    lo = np.array([f.quant_min for f in FEATURES])
    hi = np.array([f.quant_max for f in FEATURES])
    values = rng.uniform(lo, hi, size=(50, N_FEATURES))
    values[::7, 3] = np.nan
    block = Block(0, 1_795_000_000, 1, quantize(values), None)
    decoded = dequantize(decode_blocks(encode_block(block))[0].codes)
    assert np.array_equal(np.isnan(decoded), np.isnan(values))
    steps = np.array([f.step for f in FEATURES])
    assert np.all(np.nan_to_num(np.abs(decoded - values)) <= steps)


def test_blocks_back_to_back_decode_in_order():
    rng = np.random.default_rng(4)
    blocks = [random_block(rng, 10, first_seq=s) for s in (0, 10, 20)]
    decoded = decode_blocks(b"".join(encode_block(b) for b in blocks))
    assert [b.first_seq for b in decoded] == [0, 10, 20]


def test_every_single_bit_flip_is_detected():
    data = bytearray(encode_block(random_block(np.random.default_rng(5), 6)))
    for bit in range(len(data) * 8):
        corrupted = bytearray(data)
        corrupted[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BlockError):
            decode_blocks(bytes(corrupted))


@pytest.mark.parametrize("cut", [0, 1, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 14])
def test_truncated_blocks_are_refused(cut):
    data = encode_block(random_block(np.random.default_rng(6), 3))
    with pytest.raises(BlockError):
        decode_blocks(data[:cut] if cut else b"")


def test_block_size_limits_are_enforced_on_encode():
    with pytest.raises(ValueError):
        encode_block(random_block(np.random.default_rng(7), MAX_EPOCHS_PER_BLOCK + 1))
