"""Recordings: renamed, ended, reopened and deleted; an open night is bounded."""

from datetime import timedelta

from tests.factories import NIGHT_START, batch_json, iso, stored_seqs

DAY = 2880  # epochs


def test_an_open_night_reaches_24_hours_and_ending_it_bounds_it_where_it_says(
    client, tenant, make_device, database_url
):
    device = make_device(tenant)
    for first in range(0, 2 * DAY, DAY):  # two days of epochs
        assert (
            client.post(
                "/v1/epochs:ingest", json=batch_json(range(first, first + DAY)), headers=device.headers
            ).status_code
            == 200
        )
    created = client.post(
        "/v1/recordings", headers=tenant.headers, json={"device_id": device.id, "started_at": iso(NIGHT_START)}
    ).json()
    path = f"/v1/recordings/{created['id']}"
    assert created["ended_at"] is None and created["epoch_count"] == DAY  # open: a day, not everything after
    staged = client.post(f"/v1/predict/recordings/{created['id']}", headers=tenant.headers).json()
    assert staged["epochs"] == DAY

    ended = client.patch(
        path, headers=tenant.headers, json={"ended_at": iso(NIGHT_START + timedelta(hours=8)), "label": "Monday"}
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["epoch_count"] == 960 and ended.json()["label"] == "Monday"
    assert client.post(f"/v1/predict/recordings/{created['id']}", headers=tenant.headers).json()["epochs"] == 960
    assert client.get(path, headers=tenant.headers).json()["label"] == "Monday"

    reopened = client.patch(path, headers=tenant.headers, json={"ended_at": None})
    assert reopened.json()["ended_at"] is None and reopened.json()["epoch_count"] == DAY
    renamed = client.patch(path, headers=tenant.headers, json={"label": "first night"})
    assert renamed.json()["label"] == "first night" and renamed.json()["ended_at"] is None


def test_patch_refuses_what_makes_no_night_and_delete_keeps_the_devices_data(
    client, tenant, make_tenant, make_device, database_url
):
    device = make_device(tenant)
    client.post("/v1/epochs:ingest", json=batch_json(range(100)), headers=device.headers)
    created = client.post(
        "/v1/recordings", headers=tenant.headers, json={"device_id": device.id, "started_at": iso(NIGHT_START)}
    ).json()
    path = f"/v1/recordings/{created['id']}"
    before = client.patch(path, headers=tenant.headers, json={"ended_at": iso(NIGHT_START - timedelta(hours=1))})
    assert before.status_code == 422 and "after started_at" in before.json()["detail"]
    assert client.patch(path, headers=tenant.headers, json={"started_at": iso(NIGHT_START)}).status_code == 400
    assert client.patch(path, headers=tenant.headers, json={"label": "x" * 500}).status_code == 400

    stranger = make_tenant()
    assert client.patch(path, headers=stranger.headers, json={"label": "mine"}).status_code == 404
    assert client.delete(path, headers=stranger.headers).status_code == 404
    assert client.get(path, headers=tenant.headers).json()["label"] == ""

    assert client.delete(path, headers=tenant.headers).status_code == 204
    assert client.get(path, headers=tenant.headers).status_code == 404
    assert client.delete(path, headers=tenant.headers).status_code == 404
    assert stored_seqs(database_url, device.id) == list(range(100))  # the device's epochs stay
