"""Resends racing each other: the per-device lock keeps every epoch exactly once."""

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.factories import batch_json, stored_seqs


def test_concurrent_overlapping_resends_store_each_epoch_once(live_server, device, database_url):
    batches = [batch_json(range(start, start + 300)) for start in (0, 100, 200, 0, 150, 100, 250, 0)]

    def send(batch):
        with httpx.Client(base_url=live_server.url, timeout=60) as own:
            response = own.post("/v1/epochs:ingest", json=batch, headers=device.headers)
            assert response.status_code == 200, response.text
            return response.json()

    with ThreadPoolExecutor(8) as pool:
        acks = list(pool.map(send, batches))
    assert sum(a["accepted"] for a in acks) == 550
    assert sum(a["accepted"] + a["duplicates"] for a in acks) == 8 * 300
    assert all(not a["rejected"] for a in acks)
    assert stored_seqs(database_url, device.id) == list(range(550))
    final = send(batch_json([]))
    assert final["ack_seq"] == 549
