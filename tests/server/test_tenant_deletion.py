"""Deleting an organisation leaves nothing of it behind, in any table, and nothing else goes."""

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from sync_server.db import metadata, tenants
from tests.conftest import PASSWORD, login
from tests.factories import NIGHT_START, batch_json, run_sql


def _rows_of(database_url: str, tenant_id: str) -> dict[str, int]:
    """Rows carrying this tenant's id, per table (and the tenant row itself)."""
    counts = {}
    for table in metadata.sorted_tables:
        if "tenant_id" in table.c:
            query = select(func.count()).select_from(table).where(table.c.tenant_id == uuid.UUID(tenant_id))
            counts[table.name] = run_sql(database_url, query)[0][0]
    counts["tenants"] = run_sql(database_url, select(func.count()).where(tenants.c.id == uuid.UUID(tenant_id)))[0][0]
    return counts


def test_the_owner_deletes_the_organisation_and_everything_in_it(client, make_tenant, make_device, database_url):
    doomed, neighbour = make_tenant(), make_tenant()
    for tenant in (doomed, neighbour):
        device = make_device(tenant)
        client.post("/v1/epochs:ingest", json=batch_json(range(50)), headers=device.headers)
        night = {
            "device_id": device.id,
            "started_at": NIGHT_START.isoformat(),
            "ended_at": (NIGHT_START + timedelta(hours=1)).isoformat(),
        }
        recording = client.post("/v1/recordings", headers=tenant.headers, json=night).json()
        client.post(f"/v1/predict/recordings/{recording['id']}", headers=tenant.headers)
        body = {"email": f"admin-{uuid.uuid4().hex[:6]}@example.com", "password": PASSWORD, "role": "admin"}
        client.post("/v1/users", headers=tenant.headers, json=body)
    admin = login(client, body["email"])  # the neighbour's admin: not an owner of anything
    before, neighbours = _rows_of(database_url, doomed.id), _rows_of(database_url, neighbour.id)
    assert before["epochs"] == 50 and before["predictions"] == 50 and before["users"] == 2

    assert client.delete("/v1/tenant", headers=admin).status_code == 403
    wrong = client.delete("/v1/tenant", headers=doomed.headers, params={"confirm": "not its name"})
    assert wrong.status_code == 422 and "exact name" in wrong.json()["detail"]
    name = run_sql(database_url, select(tenants.c.name).where(tenants.c.id == uuid.UUID(doomed.id)))[0][0]
    gone = client.delete("/v1/tenant", headers=doomed.headers, params={"confirm": name})
    assert gone.status_code == 204, gone.text

    assert set(_rows_of(database_url, doomed.id).values()) == {0}
    assert client.get("/v1/devices", headers=doomed.headers).status_code == 401  # its tokens are gone too
    assert _rows_of(database_url, neighbour.id) == neighbours  # nothing of anyone else
