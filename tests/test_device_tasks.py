"""Sampling never waits for the network: the firmware's own code (noctis-device --tasks,
the board's two tasks as two threads) against the real server while its connection is
blackholed for longer than an upload's timeout."""

import time

import numpy as np
import pytest

from device_sim.firmware import FirmwareDevice, build_firmware
from tests.factories import NIGHT_START, edge_lookahead, stored_seqs
from tests.faultproxy import FaultProxy

STALL_SECONDS = 40  # longer than one upload's 30-s timeout: at least one times out, another waits


def test_epochs_are_taken_at_once_while_the_server_hangs_and_all_arrive_after(
    live_server, database_url, backend, make_tenant, make_device, tmp_path
):
    if backend != "postgresql":
        pytest.skip("a minute of real time; what it tests is the device's, so one database leg is enough")
    build_firmware()
    registered = make_device(make_tenant(), "bedside")
    proxy = FaultProxy(int(live_server.url.rsplit(":", 1)[1]))
    device = FirmwareDevice(
        tmp_path / "device", f"http://127.0.0.1:{proxy.port}", registered.id, registered.secret, tasks=True
    )
    codes = np.full(15, 90, dtype=np.uint8)
    now_ms = 0

    def sample(count: int) -> list[float]:
        """Hand `count` epochs over, one by one; how long each answer took (s)."""
        nonlocal now_ms
        latencies = []
        for _ in range(count):
            now_ms += 30_000
            started = time.monotonic()
            answers = device.run(device.record(now_ms, codes, stage=1))
            latencies.append(time.monotonic() - started)
            assert answers[-1].startswith("queued "), answers
        return latencies

    try:
        device.start(0)
        device.run(["time 0", f"clock {int(NIGHT_START.timestamp())}"])
        sample(10)
        assert device.run(["drain 20000"]) == ["drained 0"]
        held = min(10, edge_lookahead())  # the newest wait for their stage
        assert device.status()["held"] == held
        assert stored_seqs(database_url, registered.id) == list(range(10 - held))

        proxy.blackhole = True
        stalled_until = time.monotonic() + STALL_SECONDS
        latencies: list[float] = []
        while time.monotonic() < stalled_until:
            latencies += sample(1)
            time.sleep(0.25)
        status = dict(part.split("=") for part in device.run(["status"])[0].split()[1:])
        proxy.blackhole = False

        assert max(latencies) < 1.0, "sampling waited on the network"
        assert int(status["failures"]) >= 1, "the uploads really hung and failed meanwhile"
        # Every epoch is in flash or handed over (a request hangs 30 s at most; on the
        # board the hand-over queue holds 16 epochs, eight minutes at the real pace).
        assert int(status["pending"]) + int(status["waiting"]) == held + len(latencies)
        assert device.run(["drain 90000"]) == ["drained 0"]
        made = 10 + len(latencies)
        assert stored_seqs(database_url, registered.id) == list(range(made - min(made, edge_lookahead())))
    finally:
        device.stop()
        proxy.close()
