"""The drift worker against real stored epochs and predictions, read back through the API."""

import asyncio

import numpy as np

from drift_service.__main__ import run_once
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
    # the nights the model trained on, so the feature drift is flagged.
    assert shown[honest2.id]["level"] == "major"
    assert shown[honest2.id]["max_feature_psi"] > 0.25
    assert set(shown[honest2.id]["details"]["features"]) == {f.name for f in FEATURES}


def test_drift_reports_are_tenant_scoped(client, make_tenant, make_device, database_url, tmp_path):
    owner, other = make_tenant(), make_tenant()
    device = make_device(owner)
    client.post("/v1/epochs:ingest", json=batch_json(range(20)), headers=device.headers)
    asyncio.run(run_once(make_settings(database_url, tmp_path), hours=1e6))
    assert device.id in {r["device_id"] for r in client.get("/v1/model/drift", headers=owner.headers).json()}
    assert client.get("/v1/model/drift", headers=other.headers).json() == []
    assert client.get("/v1/model/drift", headers=device.headers).status_code == 403
