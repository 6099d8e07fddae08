"""The device puts each edge-model output on the epoch training put it on: the firmware's
own code (noctis-device) against the real server, a night longer than a flash block, its
stored edge stages compared with `staged_late`, the definition every edge model is
trained and measured with."""

import numpy as np
import pytest

from device_sim.__main__ import night_codes
from device_sim.firmware import FirmwareDevice, build_firmware
from model_export.edge_model import staged_late
from noctis_contract.blocks import MAX_EPOCHS_PER_BLOCK
from tests.factories import NIGHT_START, edge_lookahead, stored_column

HOUR_AWAY_MS = 3_600_000 + 30_000  # the device's rule: an hour without epochs begins a new night


def test_every_stored_edge_stage_is_the_one_training_gives_its_epoch(
    live_server, database_url, backend, make_tenant, make_device, tmp_path
):
    if backend == "timescaledb":
        pytest.skip("what it tests is the device's; the storage legs are covered elsewhere")
    build_firmware()
    lookahead = edge_lookahead()
    registered = make_device(make_tenant(), "bedside")
    device = FirmwareDevice(tmp_path / "device", live_server.url, registered.id, registered.secret)
    # Two full blocks and part of a third: the stages that cross each block's end are the test.
    epochs = 2 * MAX_EPOCHS_PER_BLOCK + 40
    codes = night_codes(7, epochs / 120)
    rng = np.random.default_rng(3)
    # The model's output on the window ending at each epoch: runs of a few epochs, so a
    # stage placed one epoch off shows.
    outputs = np.repeat(rng.integers(0, 4, size=epochs // 3 + 1), 3)[:epochs]
    now_ms = 0
    try:
        device.start(0)
        device.run(["time 0", f"clock {int(NIGHT_START.timestamp())}"])
        for t in range(epochs):
            now_ms += 30_000
            device.run(device.record(now_ms, codes[t], stage=int(outputs[t])))
            if t % 50 == 49:
                device.sync(now_ms)
        # The night ends (an hour away): its newest epochs take its last output.
        now_ms += HOUR_AWAY_MS
        device.run(device.record(now_ms, codes[0], stage=0))
        for _ in range(100):
            wait, ready = device.sync(now_ms)
            if ready == 0:
                break
            now_ms += wait
        assert device.status()["pending"] == 1, "everything but the new night's first epoch is on the server"
    finally:
        device.stop()

    seqs = stored_column(database_url, "epochs", "seq", registered.id)
    stored = stored_column(database_url, "epochs", "edge_stage", registered.id)
    assert seqs[:epochs] == list(range(epochs))
    expected = staged_late(outputs, lookahead)
    wrong = [t for t in range(epochs) if stored[t] != expected[t]]
    assert not wrong, f"{len(wrong)} epochs carry another epoch's stage, at seqs {wrong[:8]}"
