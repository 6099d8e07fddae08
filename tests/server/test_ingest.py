import zlib

import numpy as np
import pytest

from noctis_contract.blocks import Block, encode_block
from noctis_contract.features import N_FEATURES, quantize
from tests.factories import NIGHT_START, batch_json, epoch_json, stored_seqs


def ingest(client, device, batch):
    return client.post("/v1/epochs:ingest", json=batch, headers=device.headers)


def counts(answer):
    """The ack's counts and watermark, without the limits and the incarnation."""
    return {k: answer[k] for k in ("accepted", "duplicates", "rejected", "ack_seq")}


def test_same_batch_twice_is_stored_once(client, device, database_url):
    first = ingest(client, device, batch_json(range(100)))
    assert first.status_code == 200, first.text
    assert counts(first.json()) == {"accepted": 100, "duplicates": 0, "rejected": [], "ack_seq": 99}
    second = ingest(client, device, batch_json(range(100)))
    assert counts(second.json()) == {"accepted": 0, "duplicates": 100, "rejected": [], "ack_seq": 99}
    assert stored_seqs(database_url, device.id) == list(range(100))


def test_overlapping_batches_store_each_epoch_exactly_once(client, device, database_url):
    assert ingest(client, device, batch_json(range(0, 500))).json()["accepted"] == 500
    second = ingest(client, device, batch_json(range(250, 750))).json()
    assert (second["accepted"], second["duplicates"], second["ack_seq"]) == (250, 250, 749)
    assert stored_seqs(database_url, device.id) == list(range(750))


def test_ack_seq_stops_at_a_gap_and_moves_when_it_is_filled(client, device):
    assert ingest(client, device, batch_json(range(0, 10))).json()["ack_seq"] == 9
    assert ingest(client, device, batch_json(range(20, 30))).json()["ack_seq"] == 9
    assert ingest(client, device, batch_json(range(10, 20))).json()["ack_seq"] == 29


def test_ack_seq_is_minus_one_before_seq_zero_arrives(client, device):
    assert ingest(client, device, batch_json(range(5, 8))).json()["ack_seq"] == -1
    assert counts(ingest(client, device, batch_json([])).json()) == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [],
        "ack_seq": -1,
    }


def test_mixed_batch_stores_the_valid_epochs_and_names_each_rejection(client, device, database_url):
    batch = batch_json(range(8))
    batch["epochs"][1]["features"] = batch["epochs"][1]["features"][:14]
    batch["epochs"][2]["features"][0] = 900.0
    batch["epochs"][3]["features"][4] = -1.0
    batch["epochs"][4]["start"] = "2001-01-01T00:00:00Z"
    batch["epochs"][5]["edge_stage"] = 7
    batch["epochs"].append(epoch_json(0))
    body = ingest(client, device, batch).json()
    reasons = {r["seq"]: r["reason"] for r in body["rejected"]}
    assert set(reasons) == {0, 1, 2, 3, 4, 5}
    assert "expected 15 features" in reasons[1]
    assert "hr_mean=900" in reasons[2]
    assert "resp_rate_std=-1" in reasons[3]
    assert "clock" in reasons[4]
    assert "edge_stage" in reasons[5]
    assert "twice" in reasons[0]
    assert body["accepted"] == 3
    assert stored_seqs(database_url, device.id) == [0, 6, 7]
    # Seqs 1..5 can never be stored: they are recorded as gone and the watermark passes them.
    assert all(r["final"] for r in body["rejected"])
    assert body["declared_gap_epochs"] == 5 and body["ack_seq"] == 7


def test_seq_resent_with_another_start_time_is_rejected_not_stored_twice(client, device, database_url):
    ingest(client, device, batch_json(range(3)))
    moved = batch_json([1])
    moved["epochs"][0]["start"] = "2026-11-26T01:00:00Z"
    body = ingest(client, device, moved).json()
    assert body["accepted"] == 0 and body["rejected"][0]["seq"] == 1
    assert "already stored" in body["rejected"][0]["reason"]
    assert stored_seqs(database_url, device.id) == [0, 1, 2]


def test_future_start_is_rejected(client, device):
    batch = batch_json([0])
    batch["epochs"][0]["start"] = "2099-01-01T00:00:00Z"
    assert "future" in ingest(client, device, batch).json()["rejected"][0]["reason"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "fragment"),
    [
        (b'{"epochs": [', "application/json", 422, "malformed JSON"),
        (
            b'{"epochs": [{"seq": 0, "start": "2026-11-27T22:00:00Z", "features": [NaN]}]}',
            "application/json",
            422,
            "malformed JSON",
        ),
        (b'{"epochs": "none"}', "application/json", 422, "ingest schema"),
        (b'{"schema_version": 2, "epochs": []}', "application/json", 422, "schema version 2"),
        (b'{"epochs": [], "surprise": 1}', "application/json", 422, "surprise"),
        (b"hello", "text/plain", 415, "content-type"),
    ],
)
def test_bad_bodies_get_problem_details_and_store_nothing(
    client, device, database_url, body, content_type, status, fragment
):
    response = client.post("/v1/epochs:ingest", content=body, headers={**device.headers, "content-type": content_type})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status and fragment in problem["detail"]
    assert set(problem) == {"type", "title", "status", "detail"}
    assert stored_seqs(database_url, device.id) == []


def test_too_many_epochs_in_one_batch_is_413(client, device, database_url):
    response = ingest(client, device, batch_json(range(2881)))
    assert response.status_code == 413
    assert "limit of 2880" in response.json()["detail"]
    assert stored_seqs(database_url, device.id) == []


def test_oversized_body_is_413(client, device):
    response = client.post(
        "/v1/epochs:ingest",
        content=b" " * (2 * 1024 * 1024 + 1),
        headers={**device.headers, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413


def test_a_body_that_grows_past_the_limit_undeclared_is_413(client, device, database_url):
    def chunked():  # no Content-Length: the limit is found while reading
        for _ in range(3):
            yield b" " * (1024 * 1024)

    response = client.post(
        "/v1/epochs:ingest", content=chunked(), headers={**device.headers, "content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "limit of 2097152 bytes" in response.json()["detail"]
    assert stored_seqs(database_url, device.id) == []


def _blocks_upload(first_seq, count, model_version=3):
    rng = np.random.default_rng(first_seq)
    values = rng.uniform(0.1, 0.9, size=(count, N_FEATURES)) * [
        100,
        10,
        100,
        20,
        5,
        10,
        1,
        1,
        2,
        50,
        100,
        50,
        200,
        10,
        8,
    ]
    values[:, 0] += 40
    values[::5, 11] = np.nan
    stages = rng.integers(0, 4, size=count).astype(np.uint8)
    start = int(NIGHT_START.timestamp()) + 30 * first_seq
    return encode_block(Block(first_seq, start, model_version, quantize(values), stages)), values, stages


def test_binary_blocks_are_stored_like_json(client, device, database_url):
    data_a, _, _ = _blocks_upload(0, 267)
    data_b, _, _ = _blocks_upload(267, 33)
    response = client.post(
        "/v1/epochs:ingest",
        content=data_a + data_b,
        headers={**device.headers, "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    assert counts(response.json()) == {"accepted": 300, "duplicates": 0, "rejected": [], "ack_seq": 299}
    resend = client.post(
        "/v1/epochs:ingest", content=data_b, headers={**device.headers, "content-type": "application/octet-stream"}
    )
    assert resend.json()["duplicates"] == 33
    assert stored_seqs(database_url, device.id) == list(range(300))


@pytest.mark.parametrize("damage", ["truncate", "crc", "magic"])
def test_broken_blocks_are_refused_whole(client, device, database_url, damage):
    good, _, _ = _blocks_upload(0, 20)
    bad, _, _ = _blocks_upload(20, 20)
    if damage == "truncate":
        bad = bad[:-3]
    elif damage == "crc":
        bad = bad[:30] + bytes([bad[30] ^ 0x10]) + bad[31:]
    else:
        bad = b"XXXX" + bad[4:]
    response = client.post(
        "/v1/epochs:ingest", content=good + bad, headers={**device.headers, "content-type": "application/octet-stream"}
    )
    assert response.status_code == 422
    assert "bad block" in response.json()["detail"]
    assert stored_seqs(database_url, device.id) == []


def test_crc_is_zlib_crc32_of_header_and_payload():
    data, _, _ = _blocks_upload(0, 4)
    assert int.from_bytes(data[20:24], "little") == zlib.crc32(data[:20] + data[24:])
