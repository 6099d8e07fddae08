"""The audit log: accounts, devices, deletions and labels, as they happen, for owners
and admins of the tenant only."""

from datetime import timedelta

from tests.conftest import PASSWORD, login
from tests.factories import NIGHT_START, batch_json, iso


def test_what_people_do_is_logged_for_the_owner_and_no_one_else(client, tenant, make_tenant, make_device):
    empty = client.get("/v1/audit", headers=tenant.headers)
    assert empty.status_code == 200 and empty.json() == []
    member = client.post(
        "/v1/users", headers=tenant.headers, json={"email": "m@example.com", "password": PASSWORD, "role": "member"}
    ).json()
    device = make_device(tenant, "bedside")
    client.post("/v1/epochs:ingest", json=batch_json(range(10)), headers=device.headers)
    client.post(f"/v1/devices/{device.id}/disable", headers=tenant.headers)
    client.post(f"/v1/devices/{device.id}/enable", headers=tenant.headers)
    night = {
        "device_id": device.id,
        "started_at": iso(NIGHT_START),
        "ended_at": iso(NIGHT_START + timedelta(hours=1)),
    }
    recording = client.post("/v1/recordings", headers=tenant.headers, json=night).json()
    start = batch_json([0])["epochs"][0]["start"]
    labels = {"scorer": "PSG lab A", "epochs": [{"start": start, "stage": "N2"}]}
    put = client.put(f"/v1/recordings/{recording['id']}/labels", headers=tenant.headers, json=labels)
    assert put.status_code == 200, put.text
    client.delete(f"/v1/recordings/{recording['id']}", headers=tenant.headers)
    client.delete(f"/v1/devices/{device.id}", headers=tenant.headers)

    events = client.get("/v1/audit", headers=tenant.headers).json()
    assert [e["action"] for e in events] == [
        "device.delete",
        "recording.delete",
        "labels.replace",
        "device.enable",
        "device.disable",
        "device.create",
        "user.create",
    ]
    assert events[-1]["target"] == member["id"] and "m@example.com as member" in events[-1]["detail"]
    assert {e["actor"].split(":")[0] for e in events} == {"user"}
    assert "1 epochs scored by PSG lab A" in events[2]["detail"]
    assert events[0]["target"] == device.id and "bedside" in events[0]["detail"]

    assert client.get("/v1/audit", headers=login(client, "m@example.com")).status_code == 403
    assert client.get("/v1/audit", headers=make_tenant().headers).json() == []
    assert len(client.get("/v1/audit", headers=tenant.headers, params={"limit": 2}).json()) == 2
