"""The drift worker against real stored epochs and predictions, read back through the API."""

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
from prometheus_client import REGISTRY

from drift_service.__main__ import run_once
from model_export.simulator import Sleeper, simulate_night
from noctis_contract.features import FEATURES
from tests.conftest import make_settings
from tests.factories import batch_json


def _realistic_batch(seqs, stages):
    batch = batch_json(seqs)
    for epoch, stage in zip(batch["epochs"], stages):
        epoch["edge_stage"] = int(stage)
    return batch


def test_drift_report_measures_edge_agreement_and_feature_shift(client, tenant, make_device, database_url, tmp_path):
    # The server's stages for the factory's night (its features depend only on seq).
    probe = make_device(tenant, "probe")
    client.post("/v1/epochs:ingest", json=batch_json(range(240)), headers=probe.headers)
    recording = client.post(
        "/v1/recordings", headers=tenant.headers, json={"device_id": probe.id, "started_at": "2026-11-27T21:00:00Z"}
    ).json()
    live = client.post("/v1/predict", headers=tenant.headers, json={"recording_id": recording["id"]}).json()
    server_stages = np.array([e["stage_id"] for e in live["epochs"]])
    # Same night on two devices: one's edge model agrees with the server, the other's is off by a stage.
    honest2, broken2 = make_device(tenant, "honest"), make_device(tenant, "broken")
    client.post("/v1/epochs:ingest", json=_realistic_batch(range(240), server_stages), headers=honest2.headers)
    client.post(
        "/v1/epochs:ingest", json=_realistic_batch(range(240), (server_stages + 1) % 4), headers=broken2.headers
    )
    for device in (honest2, broken2):
        recording = client.post(
            "/v1/recordings",
            headers=tenant.headers,
            json={"device_id": device.id, "started_at": "2026-11-27T21:00:00Z"},
        ).json()
        client.post(f"/v1/predict/recordings/{recording['id']}", headers=tenant.headers)

    reports = asyncio.run(run_once(make_settings(database_url, tmp_path), hours=1e6))
    assert {r["device_id"].hex for r in reports} >= {d.id.replace("-", "") for d in (honest2, broken2)}

    shown = {r["device_id"]: r for r in client.get("/v1/model/drift", headers=tenant.headers).json()}
    assert shown[honest2.id]["edge_agreement"] == 1.0
    assert shown[broken2.id]["edge_agreement"] == 0.0
    assert shown[honest2.id]["epochs"] == 240
    # The test factory draws features uniformly over each quantization range: far from
    # the nights the model trained on, as the PSI says; but a device is judged against
    # its own first nights, and these devices have none yet.
    assert shown[honest2.id]["max_feature_psi"] > 0.25
    assert set(shown[honest2.id]["details"]["features"]) == {f.name for f in FEATURES}
    assert shown[honest2.id]["level"] == "unknown"
    assert shown[honest2.id]["details"]["verdict"]["reason"].startswith("night shorter")


def _night_batches(night, first_seq, start, flat_heart_rate):
    """A simulated sleeper's night as ingest batches of 500 epochs."""
    features = night.features.copy()
    if flat_heart_rate:
        features[:, 0] = np.where(np.isnan(features[:, 0]), np.nan, 62.0)
    epochs = [
        {
            "seq": first_seq + i,
            "start": (start + timedelta(seconds=30 * i)).isoformat().replace("+00:00", "Z"),
            "features": [None if np.isnan(v) else round(float(v), 3) for v in row],
            "edge_stage": int(stage),
        }
        for i, (row, stage) in enumerate(zip(features, night.stages))
    ]
    return [
        {"schema_version": 1, "edge_model_version": 1, "epochs": epochs[i : i + 500]}
        for i in range(0, len(epochs), 500)
    ]


def test_a_device_is_judged_against_its_own_first_nights(client, tenant, make_device, database_url, tmp_path):
    """Six sleepers upload six nights each; on the last one a heart rate flat-lines. The
    first four nights are the baseline (unknown), the fifth is stable everywhere, the
    sixth flags only the broken device, naming its heart rate."""
    rng = np.random.default_rng(11)
    devices = [(make_device(tenant, f"bed-{i}"), Sleeper.draw(rng)) for i in range(6)]
    settings = make_settings(database_url, tmp_path)
    seq = {device.id: 0 for device, _ in devices}
    ours = {device.id.replace("-", "") for device, _ in devices}
    for n in range(6):
        evening = datetime(2026, 11, 1, 22, tzinfo=UTC) + timedelta(days=n)
        for i, (device, sleeper) in enumerate(devices):
            night = simulate_night(int(rng.integers(2**31)), hours=7.0, sleeper=sleeper)
            for batch in _night_batches(night, seq[device.id], evening, flat_heart_rate=(i == 0 and n == 5)):
                assert client.post("/v1/epochs:ingest", json=batch, headers=device.headers).status_code == 200
            seq[device.id] += len(night.stages)
        reports = asyncio.run(run_once(settings, hours=24, end=evening + timedelta(hours=14)))
        # Only these sleepers: the database is shared, and other tests upload nights
        # dated relative to today, which may fall in these fixed November days.
        levels = {r["device_id"].hex: r["level"] for r in reports if r["device_id"].hex in ours}
        assert len(levels) == 6
        if n < 4:
            assert set(levels.values()) == {"unknown"}
        elif n == 4:
            assert set(levels.values()) == {"stable"}

    shown = {r["device_id"]: r for r in client.get("/v1/model/drift", headers=tenant.headers).json()}
    broken = shown.pop(devices[0][0].id)
    assert broken["level"] == "major"
    assert broken["details"]["verdict"]["kind"] == "sensor"
    assert broken["details"]["verdict"]["statistic"].startswith(("hr_mean", "hr_std", "ibi_rmssd"))
    assert {r["level"] for r in shown.values()} == {"stable"}
    # Running again over the same window neither counts the night twice nor changes the verdict.
    again = asyncio.run(run_once(settings, hours=24, end=evening + timedelta(hours=14)))
    assert {r["device_id"].hex: r["level"] for r in again}[devices[0][0].id.replace("-", "")] == "major"


def test_drift_reports_are_tenant_scoped(client, make_tenant, make_device, database_url, tmp_path):
    owner, other = make_tenant(), make_tenant()
    device = make_device(owner)
    client.post("/v1/epochs:ingest", json=batch_json(range(20), edge_model_version=7), headers=device.headers)
    asyncio.run(run_once(make_settings(database_url, tmp_path), hours=1e6))
    # Fleet gauges count devices by the edge model their uploads carry.
    assert REGISTRY.get_sample_value("noctis_edge_model_devices", {"model": "7"}) >= 1
    assert device.id in {r["device_id"] for r in client.get("/v1/model/drift", headers=owner.headers).json()}
    assert client.get("/v1/model/drift", headers=other.headers).json() == []
    assert client.get("/v1/model/drift", headers=device.headers).status_code == 403
