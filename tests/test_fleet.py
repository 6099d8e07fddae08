"""Jepsen-style: 20 devices, outages and lost answers, a real server on PostgreSQL.

The set of stored (device, seq) must equal the set generated: lost = 0, duplicates = 0.
"""

import random

import httpx
import numpy as np
import pytest

from device_sim.device import Device, Faults, night_codes, run_fleet
from device_sim.queue import FlashQueue
from tests.factories import stored_seqs

DEVICES = 20
HOURS = 1.5


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_twenty_devices_with_outages_lose_nothing_and_duplicate_nothing(
    live_server, make_tenant, make_device, database_url
):
    tenant = make_tenant()
    rng = random.Random(7)
    nights = [night_codes(100 + i, HOURS)[0] for i in range(DEVICES)]
    devices = []
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        for i in range(DEVICES):
            registered = make_device(tenant, f"fleet-{i}")
            outages = [(rng.randrange(0, 150), 0) for _ in range(2)]
            outages = [(start, start + rng.randrange(5, 60)) for start, _ in outages]
            faults = Faults(outages=outages, lost_response_rate=0.15)
            devices.append(
                Device(
                    registered.id, registered.secret, client, faults, random.Random(i), sync_every=rng.choice([1, 2, 4])
                )
            )
        first_start = 1_795_000_000 - 1_795_000_000 % 30
        run_fleet(devices, nights, first_start)

    lost_answers = sum(d.stats.lost_responses for d in devices)
    failures = sum(d.stats.failures for d in devices)
    assert lost_answers > 10 and failures > lost_answers  # the faults really happened
    for device, codes in zip(devices, nights):
        stored = stored_seqs(database_url, device.id)
        assert len(stored) == len(set(stored)), "duplicates"
        assert stored == list(range(len(codes))), f"lost {sorted(set(range(len(codes))) - set(stored))[:10]}"
        assert device.queue.pending == 0 and device.stats.acked_seq == len(codes) - 1


def test_queue_model_keeps_189_days_and_erases_whole_blocks_only():
    queue = FlashQueue()
    codes = np.full(15, 7, dtype=np.uint8)
    for seq in range(600):
        queue.append(seq, 1_795_000_000 + 30 * seq, codes, 1, 1)
    queue.acknowledge(300)  # block 0 (0..266) goes, block 1 (267..533) stays
    assert queue.pending == 600 - 267
    body, last = queue.read_batch(10**6)
    assert last == 599 and len(body) > 0
    small = FlashQueue(sectors=3)  # two usable sectors
    for seq in range(3 * 267):
        small.append(seq, 1_795_000_000 + 30 * seq, codes, None, 1)
    assert small.dropped == 267 and small.pending == 2 * 267
    assert (FlashQueue().sectors - 1) * 267 >= 189 * 2880
