import numpy as np

from tests.factories import batch_json, bundled_version, stored_column


def _recording(client, tenant, device, **window):
    body = {"device_id": device.id, "started_at": "2026-11-27T21:00:00Z", **window}
    response = client.post("/v1/recordings", headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_predict_a_stored_recording(client, tenant, device):
    batch = batch_json(range(120))
    batch["epochs"][7]["features"][0] = 999  # rejected: not scored, not predicted
    client.post("/v1/epochs:ingest", json=batch, headers=device.headers)
    recording = _recording(client, tenant, device)
    assert recording["epoch_count"] == 119
    response = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": recording["id"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == bundled_version("server")
    assert [e["seq"] for e in body["epochs"]] == [s for s in range(120) if s != 7]
    for epoch in body["epochs"]:
        probabilities = epoch["probabilities"]
        assert abs(sum(probabilities.values()) - 1) <= 4 * 0.00005 + 1e-9  # each rounded to 4 decimals
        assert epoch["stage"] == max(probabilities, key=probabilities.get)
        assert epoch["stage_id"] == ["wake", "light", "deep", "rem"].index(epoch["stage"])


def test_predict_a_time_range_and_a_closed_recording(client, tenant, device):
    client.post("/v1/epochs:ingest", json=batch_json(range(60)), headers=device.headers)
    recording = _recording(client, tenant, device, ended_at="2026-11-27T22:10:00Z")
    assert recording["epoch_count"] == 20
    ranged = client.post(
        "/v1/predict", headers=tenant.headers, json={"recording_id": recording["id"], "start": "2026-11-27T22:05:00Z"}
    ).json()
    assert [e["seq"] for e in ranged["epochs"]] == list(range(10, 20))


def test_predict_inline_epochs_matches_the_stored_path(client, tenant, device):
    batch = batch_json(range(40))
    client.post("/v1/epochs:ingest", json=batch, headers=device.headers)
    recording = _recording(client, tenant, device)
    stored = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": recording["id"]}).json()
    inline = client.post(
        "/v1/predict", headers=tenant.headers, json={"epochs": [{"features": e["features"]} for e in batch["epochs"]]}
    ).json()
    assert [e["stage"] for e in inline["epochs"]] == [e["stage"] for e in stored["epochs"]]
    got = np.array([list(e["probabilities"].values()) for e in inline["epochs"]])
    want = np.array([list(e["probabilities"].values()) for e in stored["epochs"]])
    assert np.allclose(got, want, atol=1e-5)


def test_predict_rejects_bad_requests_with_reasons(client, tenant):
    neither = client.post("/v1/predict", headers=tenant.headers, json={})
    assert neither.status_code == 422 and "either recording_id or epochs" in neither.json()["detail"]
    bad = client.post("/v1/predict", headers=tenant.headers, json={"epochs": [{"features": [1.0] * 3}]})
    assert bad.status_code == 422 and "epochs[0]" in bad.json()["detail"]
    missing = client.post(
        "/v1/predict", headers=tenant.headers, json={"recording_id": "00000000-0000-4000-8000-000000000000"}
    )
    assert missing.status_code == 404
    wrong_type = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": 5})
    assert wrong_type.status_code == 400 and wrong_type.json()["status"] == 400


def test_rescore_stores_authoritative_predictions_once_per_model(client, tenant, device, make_tenant, database_url):
    client.post("/v1/epochs:ingest", json=batch_json(range(200)), headers=device.headers)
    recording = _recording(client, tenant, device, ended_at="2026-11-28T06:00:00Z")
    first = client.post(f"/v1/predict/recordings/{recording['id']}", headers=tenant.headers)
    assert first.status_code == 200, first.text
    assert first.json()["epochs"] == 200 and first.json()["stored"] == 200
    again = client.post(f"/v1/predict/recordings/{recording['id']}", headers=tenant.headers).json()
    assert again["stored"] == 0 and again["epochs"] == 200
    # The stored stages are the ones /v1/predict answers.
    live = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": recording["id"]}).json()
    stored = _stored_stages(database_url, device.id)
    assert stored == [e["stage_id"] for e in live["epochs"]]
    other = make_tenant()
    assert client.post(f"/v1/predict/recordings/{recording['id']}", headers=other.headers).status_code == 404


def _stored_stages(database_url, device_id):
    return stored_column(database_url, "predictions", "stage", device_id)


def test_nightly_rescore_scores_recent_nights_and_old_nights_whose_epochs_came_late(
    client, tenant, device, database_url, tmp_path
):
    import os
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta
    from uuid import UUID

    from sync_server.db import epochs, recordings
    from tests.factories import run_sql

    def rescore() -> dict[str, str]:
        env = {**os.environ, "NOCTIS_DATABASE_URL": database_url, "NOCTIS_DATA_DIR": str(tmp_path)}
        command = [sys.executable, "-m", "sync_server", "rescore", "--hours", "36"]
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=True)
        return {line.split()[0]: line for line in run.stdout.splitlines() if line.count(" ") == 3}

    month_ago = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)
    client.post("/v1/epochs:ingest", json=batch_json(range(30), start=month_ago), headers=device.headers)
    window = {"started_at": month_ago.isoformat(), "ended_at": (month_ago + timedelta(hours=8)).isoformat()}
    old_night = _recording(client, tenant, device, **window)
    # A month-old night, created then, its epochs received then: not due.
    created_then = month_ago + timedelta(hours=9)
    run_sql(
        database_url,
        recordings.update().where(recordings.c.id == UUID(old_night["id"])).values(created_at=created_then),
    )
    run_sql(database_url, epochs.update().where(epochs.c.device_id == UUID(device.id)).values(received_at=created_then))
    assert old_night["id"] not in rescore()
    # The device comes back from weeks offline with the rest of that night: due again.
    late = batch_json(range(30, 40), start=month_ago + timedelta(minutes=15))
    client.post("/v1/epochs:ingest", json=late, headers=device.headers)
    assert "epochs=40 new=40" in rescore()[old_night["id"]]
    assert len(_stored_stages(database_url, device.id)) == 40
    assert "epochs=40 new=0" in rescore()[old_night["id"]]  # scored once per model version


def test_report_and_hypnogram_of_a_recording(client, tenant, device, make_tenant):
    client.post("/v1/epochs:ingest", json=batch_json(range(120)), headers=device.headers)
    recording = _recording(client, tenant, device)
    report = client.get(f"/v1/predict/recordings/{recording['id']}/report", headers=tenant.headers)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["epochs"] == 120 and body["metrics"]["time_in_bed_min"] == 60
    live = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": recording["id"]}).json()
    asleep = sum(e["stage"] != "wake" for e in live["epochs"])
    assert body["metrics"]["total_sleep_min"] == asleep / 2
    svg = client.get(f"/v1/predict/recordings/{recording['id']}/hypnogram.svg", headers=tenant.headers)
    assert svg.headers["content-type"].startswith("image/svg+xml") and svg.text.startswith("<svg")
    other = make_tenant()
    assert client.get(f"/v1/predict/recordings/{recording['id']}/report", headers=other.headers).status_code == 404


def test_recording_list_counts_each_window(client, tenant, device):
    client.post("/v1/epochs:ingest", json=batch_json(range(120)), headers=device.headers)
    windows = [
        ("2026-11-27T21:00:00Z", "2026-11-27T22:15:00Z", 30),
        ("2026-11-27T22:30:00Z", None, 60),
        ("2026-11-28T12:00:00Z", None, 0),
    ]
    for started, ended, _ in windows:
        _recording(client, tenant, device, started_at=started, ended_at=ended)
    listed = client.get("/v1/recordings", headers=tenant.headers).json()
    counts = {r["started_at"]: r["epoch_count"] for r in listed}
    assert counts == {started: expected for started, _, expected in windows}


def _set_stored_wake(database_url, device_id):
    """Overwrite the stored scores of a device's night behind the server's back: all wake."""
    import asyncio
    import uuid

    from sync_server.db import engine_for_job, predictions

    async def write() -> None:
        async with engine_for_job(database_url) as engine, engine.begin() as conn:
            await conn.execute(
                predictions.update()
                .where(predictions.c.device_id == uuid.UUID(device_id))
                .values(p_wake=1.0, p_light=0.0, p_deep=0.0, p_rem=0.0)
            )

    asyncio.run(write())


def test_an_ended_night_is_scored_once_and_then_served_from_storage(client, tenant, device, database_url, backend):
    client.post("/v1/epochs:ingest", json=batch_json(range(60)), headers=device.headers)
    ended = _recording(client, tenant, device, ended_at="2026-11-28T06:00:00Z")
    first = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": ended["id"]})
    assert len(_stored_stages(database_url, device.id)) == 60  # kept, under the model's version
    _set_stored_wake(database_url, device.id)
    report = client.get(f"/v1/predict/recordings/{ended['id']}/report", headers=tenant.headers).json()
    assert report["epochs"] == 60 and report["metrics"]["total_sleep_min"] == 0  # read, not recomputed
    again = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": ended["id"]})
    if backend == "sqlite":  # announces no changes (sync_server.changes), so keeps no answer
        assert {e["stage"] for e in again.json()["epochs"]} == {"wake"}
    else:  # the encoded answer is kept while its recording and device are unchanged ...
        assert again.content == first.content
    # ... and an upload of the device (here of an epoch outside the night) ends it.
    client.post("/v1/epochs:ingest", json=batch_json([2000]), headers=device.headers)
    after = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": ended["id"]}).json()
    assert [e["stage"] for e in after["epochs"]] == ["wake"] * 60
    assert [e["seq"] for e in after["epochs"]] == list(range(60))


def test_an_open_night_is_scored_afresh_and_not_kept(client, tenant, device, database_url):
    client.post("/v1/epochs:ingest", json=batch_json(range(30)), headers=device.headers)
    recording = _recording(client, tenant, device)  # no end: it may still grow
    client.get(f"/v1/predict/recordings/{recording['id']}/report", headers=tenant.headers)
    assert _stored_stages(database_url, device.id) == []
    client.post("/v1/epochs:ingest", json=batch_json(range(30, 40)), headers=device.headers)
    report = client.get(f"/v1/predict/recordings/{recording['id']}/report", headers=tenant.headers).json()
    assert report["epochs"] == 40


def test_reading_a_night_does_not_wait_for_the_write_lock(client, tenant, device, database_url, backend):
    """SQLite's one write lock (PostgreSQL's readers never wait for writers' row locks)."""
    import time

    import pytest

    from tests.factories import write_lock_held

    if backend != "sqlite":
        pytest.skip("SQLite's database-wide write lock; PostgreSQL locks rows")

    client.post("/v1/epochs:ingest", json=batch_json(range(30)), headers=device.headers)
    recording = _recording(client, tenant, device)
    with write_lock_held(database_url, 3.0):
        started = time.monotonic()
        report = client.get(f"/v1/predict/recordings/{recording['id']}/report", headers=tenant.headers)
        waited = time.monotonic() - started
    assert report.status_code == 200 and waited < 2.0, f"{report.status_code} after {waited:.1f} s"
