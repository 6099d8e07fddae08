"""Sync protocol v2 on the server: incarnations, declared gaps, limits in the answer."""

import numpy as np

from noctis_contract.blocks import Block, encode_block
from noctis_contract.session import DeviceHealth, Gap, GapReason, SessionRecord, encode_session
from tests.factories import NIGHT_START, stored_seqs

START = int(NIGHT_START.timestamp())


def blocks(first_seq: int, count: int, start: int = START) -> bytes:
    codes = np.full((count, 15), 40, dtype=np.uint8)
    return encode_block(Block(first_seq, start + 30 * first_seq, 1, codes, None))


def upload(client, device, body: bytes):
    headers = {**device.headers, "content-type": "application/octet-stream"}
    response = client.post("/v1/epochs:ingest", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_answer_states_the_limits(client, device):
    answer = upload(client, device, blocks(0, 3))
    assert answer["max_batch_epochs"] == 2880 and answer["max_body_bytes"] == 2 * 1024 * 1024


def test_seqs_dropped_by_a_full_queue_are_declared_and_passed(client, device, database_url):
    assert upload(client, device, encode_session(SessionRecord(7, 0)) + blocks(0, 10))["ack_seq"] == 9
    # Months offline: the ring dropped 10..99; the oldest block it still holds starts at 100.
    session = SessionRecord(7, held_from=100, reason_below=GapReason.QUEUE_FULL, health=DeviceHealth(dropped_epochs=90))
    answer = upload(client, device, encode_session(session) + blocks(100, 20))
    assert answer["ack_seq"] == 119 and answer["declared_gap_epochs"] == 90
    assert stored_seqs(database_url, device.id) == [*range(10), *range(100, 120)]


def test_a_hole_declared_inside_the_queue_is_passed_and_counted_once(client, device, tenant):
    session = SessionRecord(9, 0, gaps=[Gap(5, 5, GapReason.CORRUPT)])
    body = encode_session(session) + blocks(0, 5) + blocks(10, 5)
    assert upload(client, device, body)["ack_seq"] == 14
    again = upload(client, device, body)
    assert again["declared_gap_epochs"] == 0 and again["duplicates"] == 10
    shown = client.get(f"/v1/devices/{device.id}", headers=tenant.headers).json()
    assert shown["declared_gap_epochs"] == 5 and shown["health"]["incarnation"] == 9


def test_a_restarted_seq_counter_never_gets_the_old_watermark(client, device, database_url, tenant):
    assert upload(client, device, encode_session(SessionRecord(1, 0)) + blocks(0, 50))["ack_seq"] == 49
    # Non-volatile state lost: a new incarnation starts again at seq 0, a day later.
    later = START + 86400
    answer = upload(client, device, encode_session(SessionRecord(2, 0)) + blocks(0, 5, start=later))
    assert answer["accepted"] == 5 and answer["ack_seq"] == 4 and answer["incarnation"] == 2
    assert stored_seqs(database_url, device.id) == list(range(55))  # placed after the old ones
    assert client.get(f"/v1/devices/{device.id}", headers=tenant.headers).json()["ack_seq"] == 54
    # The first incarnation's answer is still in its own terms.
    assert upload(client, device, encode_session(SessionRecord(1, 0)) + blocks(0, 1))["ack_seq"] == 49


def test_a_future_epoch_holds_the_watermark_and_a_final_rejection_does_not(client, device):
    far = START + 10 * 365 * 86400
    body = blocks(0, 3) + encode_block(Block(3, far, 1, np.full((1, 15), 40, dtype=np.uint8), None)) + blocks(4, 2)
    answer = upload(client, device, body)
    assert [r["final"] for r in answer["rejected"]] == [False] and answer["ack_seq"] == 2


def test_json_batches_speak_v2_too(client, device):
    from tests.factories import batch_json

    first = client.post("/v1/epochs:ingest", json=batch_json(range(5), incarnation=3), headers=device.headers)
    assert first.json()["ack_seq"] == 4
    later = batch_json(range(20, 25), incarnation=3, held_from=20, gaps=[])
    later["gaps"] = [{"first_seq": 10, "last_seq": 12, "reason": "corrupt"}]
    answer = client.post("/v1/epochs:ingest", json=later, headers=device.headers).json()
    assert answer["ack_seq"] == 24 and answer["declared_gap_epochs"] == 15
    bad = batch_json([30], incarnation=3, gaps=[{"first_seq": 9, "last_seq": 2}])
    assert client.post("/v1/epochs:ingest", json=bad, headers=device.headers).status_code == 422


def test_device_health_is_kept_shown_and_counted_in_bounded_fleet_gauges(
    client, device, tenant, database_url, tmp_path
):
    import asyncio

    from prometheus_client import REGISTRY

    from drift_service.__main__ import run_once
    from tests.conftest import make_settings

    def gauge(condition):
        return REGISTRY.get_sample_value("noctis_fleet_devices", {"condition": condition}) or 0

    asyncio.run(run_once(make_settings(database_url, tmp_path), hours=1e6))
    before = {c: gauge(c) for c in ("uploads_failing", "weak_wifi", "low_heap", "queue_over_half")}
    health = DeviceHealth(
        boot_count=4, queue_pending=900, queue_capacity=1000, firmware_version=3, consecutive_failures=5,
        model_version=2, free_heap=15_000, rssi_dbm=-85,
    )  # fmt: skip
    upload(client, device, encode_session(SessionRecord(11, 0, health=health)) + blocks(0, 3))
    shown = client.get(f"/v1/devices/{device.id}", headers=tenant.headers).json()["health"]
    assert shown["rssi_dbm"] == -85 and shown["free_heap"] == 15_000 and shown["model_version"] == 2
    assert shown["consecutive_failures"] == 5 and shown["boot_count"] == 4
    asyncio.run(run_once(make_settings(database_url, tmp_path), hours=1e6))
    assert all(gauge(c) == before[c] + 1 for c in before), "this device joined each condition's count"
