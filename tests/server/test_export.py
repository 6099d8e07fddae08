"""A device's data exported as CSV and read back: every epoch, its features, its edge
stage and the server's stored stage; a month at a time; never another tenant's."""

import csv
import io
from datetime import timedelta

import numpy as np

from noctis_contract.features import FEATURE_NAMES, as_sent, to_array
from noctis_contract.stages import STAGE_LABELS
from tests.factories import NIGHT_START, batch_json, iso


def _hour_of_epochs(client, tenant, make_device):
    """A device that uploaded 100 epochs, and a recording of that hour."""
    device = make_device(tenant)
    batch = batch_json(range(100))
    client.post("/v1/epochs:ingest", json=batch, headers=device.headers)
    window = {"device_id": device.id, "started_at": iso(NIGHT_START), "ended_at": iso(NIGHT_START + timedelta(hours=1))}
    return device, batch, client.post("/v1/recordings", headers=tenant.headers, json=window).json()


def test_a_devices_epochs_export_as_csv_and_read_back(client, tenant, make_tenant, make_device):
    device, batch, recording = _hour_of_epochs(client, tenant, make_device)
    client.post(f"/v1/predict/recordings/{recording['id']}", headers=tenant.headers)  # server stages stored

    path = f"/v1/devices/{device.id}/epochs.csv"
    params = {"start": iso(NIGHT_START), "end": iso(NIGHT_START + timedelta(days=1))}
    response = client.get(path, headers=tenant.headers, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["seq"]) for r in rows] == list(range(100))
    stored = as_sent(to_array([e["features"] for e in batch["epochs"]]))
    exported = np.array([[float(r[name]) if r[name] else np.nan for name in FEATURE_NAMES] for r in rows])
    assert np.allclose(exported, stored, rtol=1e-5, equal_nan=True)
    assert [r["edge_stage"] for r in rows] == [STAGE_LABELS[e["edge_stage"]] for e in batch["epochs"]]
    assert all(r["server_stage"] in STAGE_LABELS and r["server_model_version"] for r in rows)
    assert rows[0]["start"] == batch["epochs"][0]["start"]

    # By default the last 31 days, which hold this night.
    assert len(list(csv.DictReader(io.StringIO(client.get(path, headers=tenant.headers).text)))) == 100
    too_long = {"start": iso(NIGHT_START), "end": iso(NIGHT_START + timedelta(days=40))}
    refused = client.get(path, headers=tenant.headers, params=too_long)
    assert refused.status_code == 422 and "31 days" in refused.json()["detail"]
    assert client.get(path, headers=make_tenant().headers, params=params).status_code == 404


def test_a_staged_night_exports_as_edf_plus_and_reads_back(client, tenant, make_tenant, make_device):
    import edfio

    _, batch, recording = _hour_of_epochs(client, tenant, make_device)
    path = f"/v1/predict/recordings/{recording['id']}/stages.edf"
    response = client.get(path, headers=tenant.headers)
    assert response.status_code == 200, response.text
    edf = edfio.read_edf(io.BytesIO(response.content))
    server = [
        e["stage_id"]
        for e in client.post("/v1/predict", headers=tenant.headers, json={"recording_id": recording["id"]}).json()[
            "epochs"
        ]
    ]
    assert [s.label for s in edf.signals] == ["Hypnogram server", "Hypnogram edge"]
    assert edf.signals[0].data.astype(int).tolist() == server
    assert edf.signals[1].data.astype(int).tolist() == [e["edge_stage"] for e in batch["epochs"]]
    assert (edf.startdate, edf.starttime) == (NIGHT_START.date(), NIGHT_START.time().replace(tzinfo=None))
    assert len(edf.annotations) == 100 and edf.annotations[1].onset == 30.0
    assert {a.text for a in edf.annotations} <= {
        "Sleep stage W",
        "Sleep stage N1-N2",
        "Sleep stage N3",
        "Sleep stage R",
    }
    assert client.get(path, headers=make_tenant().headers).status_code == 404
