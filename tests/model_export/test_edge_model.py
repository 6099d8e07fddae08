"""The committed edge model: budgets, parity across interpreters, the firmware's copy."""

import json
import re

import numpy as np
import pytest

from model_export import carray, edge_model
from model_export.__main__ import DEFAULT_FIRMWARE, DEFAULT_REGISTRY
from model_export.simulator import simulate_night
from noctis_contract.blocks import Block, decode_blocks, encode_block
from noctis_contract.features import quantize
from noctis_contract.night_model import sha256_file
from tests.factories import bundled_version

EDGE = DEFAULT_REGISTRY / bundled_version("edge")


@pytest.fixture(scope="module")
def manifest():
    return json.loads((EDGE / "manifest.json").read_text())


@pytest.fixture(scope="module")
def tflite(manifest):
    data = (EDGE / "model.tflite").read_bytes()
    assert sha256_file(EDGE / "model.tflite") == manifest["files"]["model.tflite"]
    return data


@pytest.fixture(scope="module")
def device_windows():
    """Device-like inputs: simulated nights with every sensor, unseen in training (seed 1 family)."""
    nights = [simulate_night(1_000_000 + i) for i in range(2)]
    return np.concatenate([edge_model.night_windows(n.features) for n in nights])


def test_firmware_c_array_is_the_committed_model(tflite, manifest):
    source = (DEFAULT_FIRMWARE / "src" / "noctis_model_data.cpp").read_text()
    header = (DEFAULT_FIRMWARE / "include" / "noctis_model_data.h").read_text()
    assert carray.bytes_from_c(source) == tflite
    assert f"kEdgeModelBytes = {len(tflite)};" in header
    assert f"kEdgeModelVersion = {manifest['version_number']};" in header


def test_edge_model_fits_the_budget(tflite, manifest, device_windows):
    budget = manifest["budget"]
    assert budget["flash_bytes"] == len(tflite) <= 32 * 1024
    assert budget["tensor_arena_bytes"] <= 16 * 1024
    # The recorded arena is what TFLM really needs: it runs in it and not in 64 bytes less.
    assert edge_model.tflm_min_arena_bytes(tflite, device_windows[0]) == budget["tensor_arena_bytes"]
    edge_model.tflm_predict(tflite, device_windows[:2], arena_size=budget["tensor_arena_bytes"])
    with pytest.raises(RuntimeError):
        edge_model.tflm_predict(tflite, device_windows[:2], arena_size=budget["tensor_arena_bytes"] - 64)


def test_input_is_the_contract_byte_encoding(tflite):
    _, io = edge_model.litert_predict(tflite, np.zeros((1, edge_model.INPUT_ROWS, 15), np.uint8))
    assert (io.input_scale, io.input_zero_point) == (1.0, 0)


def test_int8_agrees_with_float_and_tflm_with_litert(tflite, device_windows):
    with np.load(EDGE / "float_weights.npz", allow_pickle=False) as npz:
        float_model = edge_model.from_float_weights({k: npz[k] for k in npz.files})
    float_stages = edge_model.logits_model(float_model).predict(device_windows.astype(np.float32), verbose=0).argmax(1)
    tflm = edge_model.tflm_predict(tflite, device_windows)
    litert, _ = edge_model.litert_predict(tflite, device_windows)
    assert (tflm.argmax(1) == float_stages).mean() >= 0.98
    # TFLM's reference kernels and LiteRT's round the requantisation differently
    # (tflite-micro#3130), after the subtraction and again in each layer: outputs may
    # differ by a step or two, stages almost never.
    assert np.abs(tflm.astype(int) - litert.astype(int)).max() <= 2
    assert (tflm.argmax(1) == litert.argmax(1)).mean() >= 0.995


def test_epochs_read_back_from_flash_give_bit_identical_stages(tflite):
    night = simulate_night(42, hours=1.0)
    codes = quantize(night.features)
    direct = edge_model.tflm_predict(tflite, edge_model.model_inputs(codes))
    blocks = [
        Block(i, 1_795_000_000 + 30 * i, 1, codes[i : i + 267], direct[i : i + 267].argmax(1).astype(np.uint8))
        for i in range(0, len(codes), 267)
    ]
    read_back = np.concatenate([b.codes for b in decode_blocks(b"".join(encode_block(b) for b in blocks))])
    assert np.array_equal(read_back, codes)
    assert np.array_equal(edge_model.tflm_predict(tflite, edge_model.model_inputs(read_back)), direct)


def test_edge_model_is_causal(tflite):
    codes = quantize(simulate_night(43, hours=0.5).features)
    changed = codes.copy()
    changed[30:] = 255 - changed[30:]
    a = edge_model.tflm_predict(tflite, edge_model.model_inputs(codes))
    b = edge_model.tflm_predict(tflite, edge_model.model_inputs(changed))
    assert np.array_equal(a[:30], b[:30])
    assert not np.array_equal(a[30:], b[30:])


def test_a_lookahead_stages_each_epoch_from_a_later_window():
    """What `evaluate --edge-lookahead` measures: epoch t read from the inputs of epoch
    t + L, the night's last epoch standing in for those past its end."""
    features = simulate_night(44, hours=0.5).features
    now = edge_model.night_windows(features)
    late = edge_model.night_windows(features, lookahead=7)
    assert late.shape == now.shape
    assert np.array_equal(late[:-7], now[7:])
    assert all(np.array_equal(window, now[-1]) for window in late[-7:])
    assert not np.array_equal(late[0], now[0])


def test_server_model_beats_edge_model_on_held_out_subjects(manifest):
    server = json.loads((DEFAULT_REGISTRY / bundled_version("server") / "manifest.json").read_text())
    assert server["metrics"]["kappa4"] > manifest["metrics"]["kappa4"]


def test_the_board_registers_every_operator_the_model_uses(tflite):
    """TFLM refuses a model with an operator its resolver lacks: the compiled-in model
    would never stage on the device. Board names are CamelCase (AddAveragePool2D)."""
    board = (DEFAULT_FIRMWARE / "src" / "board" / "board.cpp").read_text()
    registered = {name.upper() for name in re.findall(r"resolver_\.Add(\w+)\(\)", board)}
    used = {name.replace("_", "") for name in edge_model.operator_names(tflite)}
    assert used <= registered, f"board.cpp does not register {sorted(used - registered)}"
    assert re.search(rf"MicroMutableOpResolver<{len(registered)}>", board)
