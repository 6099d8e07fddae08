"""Stage labels scored by people: uploaded for a recording as JSON or CSV, validated
with reasons, read back, kept to the tenant; and models judged on them."""

from __future__ import annotations

from tests.factories import NIGHT_START, batch_json


def _night(client, tenant, device, epochs=20):  # type: ignore[no-untyped-def]
    client.post("/v1/epochs:ingest", json=batch_json(range(epochs)), headers=device.headers)
    window = {"device_id": device.id, "started_at": NIGHT_START.isoformat()}
    return client.post("/v1/recordings", headers=tenant.headers, json=window).json()


def test_labels_as_json_or_csv_replace_each_other_and_read_back(client, tenant, device):
    recording = _night(client, tenant, device)
    route = f"/v1/recordings/{recording['id']}/labels"
    starts = [e["start"] for e in client.get(route, headers=tenant.headers).json()["epochs"]]
    assert len(starts) == 20
    scored = {"scorer": "PSG lab A", "epochs": [{"start": s, "stage": "N2"} for s in starts[:10]]}
    answer = client.put(route, headers=tenant.headers, json=scored)
    assert answer.status_code == 200, answer.text
    assert answer.json()["labelled"] == 10 and answer.json()["scorers"] == ["PSG lab A"]
    csv = "start,stage\n" + "".join(f"{s},{stage}\n" for s, stage in zip(starts, ["W", "R", "n3", "rem"] * 5))
    again = client.put(
        route, params={"scorer": "PSG lab B"}, content=csv, headers={**tenant.headers, "content-type": "text/csv"}
    )
    assert again.status_code == 200, again.text
    body = client.get(route, headers=tenant.headers).json()
    assert body["labelled"] == 20 and body["scorers"] == ["PSG lab B"]
    assert [e["stage"] for e in body["epochs"][:4]] == ["wake", "rem", "deep", "rem"]


def test_labels_that_do_not_fit_are_refused_with_a_reason(client, tenant, device, make_tenant):
    recording = _night(client, tenant, device)
    route = f"/v1/recordings/{recording['id']}/labels"
    start = client.get(route, headers=tenant.headers).json()["epochs"][0]["start"]

    def put(epochs, **extra):  # type: ignore[no-untyped-def]
        return client.put(route, headers=tenant.headers, json={"scorer": "lab", "epochs": epochs, **extra})

    cases = [
        (put([{"start": start, "stage": "N5"}]), "unknown stage"),
        (put([{"start": "2026-11-27T22:00:15Z", "stage": "W"}]), "name no stored epoch"),
        (put([{"start": "2026-11-27T22:00:00", "stage": "W"}]), "UTC offset"),
        (put([{"start": start, "stage": "W"}, {"start": start, "stage": "R"}]), "a second label"),
        (put([]), "epochs"),
    ]
    for answer, reason in cases:
        assert answer.status_code == 422 and reason in answer.json()["detail"], answer.text
    bad_csv = client.put(route, content="when,what\nx,y\n", headers={**tenant.headers, "content-type": "text/csv"})
    assert bad_csv.status_code == 422 and "header start,stage" in bad_csv.json()["detail"]
    plain = client.put(route, content="W", headers={**tenant.headers, "content-type": "text/plain"})
    assert plain.status_code == 415
    other = make_tenant()
    assert client.get(route, headers=other.headers).status_code == 404
    assert (
        client.put(
            route, headers=other.headers, json={"scorer": "x", "epochs": [{"start": start, "stage": "W"}]}
        ).status_code
        == 404
    )
