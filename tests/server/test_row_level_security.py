"""Row-level security (issue #10, PostgreSQL): with the application's tenant filter
taken away, a tenant still sees and writes nothing of another tenant's."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from sync_server.db import devices, engine_for_job, epochs, scope_to_tenant, users
from sync_server.tenancy import TenantRepository
from tests.factories import batch_json


@pytest.fixture
def two_tenants_with_data(backend, client, make_tenant, make_device):  # type: ignore[no-untyped-def]
    if backend == "sqlite":
        pytest.skip("row-level security is PostgreSQL's; on SQLite TenantRepository is the guard")
    pair = []
    for _ in range(2):
        tenant = make_tenant()
        device = make_device(tenant)
        assert client.post("/v1/epochs:ingest", json=batch_json(range(5)), headers=device.headers).status_code == 200
        pair.append((tenant, device))
    return pair


def test_queries_without_a_tenant_filter_see_only_their_tenant(database_url, two_tenants_with_data):
    (a, device_a), (b, device_b) = two_tenants_with_data

    async def probe() -> None:
        async with engine_for_job(database_url) as engine:
            async with engine.begin() as conn:
                await scope_to_tenant(conn, uuid.UUID(a.id))
                seen = {str(row[0]) for row in await conn.execute(select(devices.c.id))}
                assert device_a.id in seen and device_b.id not in seen
                if not await _compressed(conn, "epochs"):
                    seen = {str(row[0]) for row in await conn.execute(select(epochs.c.device_id).distinct())}
                    assert device_a.id in seen and device_b.id not in seen
                tenants_seen = {str(row[0]) for row in await conn.execute(select(users.c.tenant_id))}
                assert tenants_seen == {a.id}
            async with engine.begin() as conn:  # the app role without a tenant: nothing
                await conn.execute(text("SET LOCAL ROLE noctis_app"))
                assert (await conn.execute(select(devices.c.id))).all() == []
            with pytest.raises(DBAPIError, match="row-level security"):
                async with engine.begin() as conn:  # writing into another tenant is refused
                    await scope_to_tenant(conn, uuid.UUID(a.id))
                    await conn.execute(
                        devices.insert().values(
                            id=uuid.uuid4(), tenant_id=uuid.UUID(b.id), name="x", secret_hash="x", ack_seq=-1
                        )
                    )

    asyncio.run(probe())


async def _compressed(conn, table: str) -> bool:  # type: ignore[no-untyped-def]
    """TimescaleDB refuses row security on compressed hypertables (migration 0008): there,
    and only there, the table must be compressed instead of row-secured."""
    secured = (await conn.execute(text(f"SELECT relrowsecurity FROM pg_class WHERE relname = '{table}'"))).scalar()
    if secured:
        return False
    query = f"SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = '{table}'"
    assert (await conn.execute(text(query))).scalar(), f"{table} has neither row security nor compression"
    return True


def test_the_api_with_its_tenant_filter_removed_still_shows_nothing_foreign(client, two_tenants_with_data, monkeypatch):
    (a, device_a), (_, device_b) = two_tenants_with_data

    def unfiltered(self, table, *columns):  # type: ignore[no-untyped-def]
        return select(*(columns or (table,)))  # the bug RLS is there for: a forgotten tenant condition

    monkeypatch.setattr(TenantRepository, "select", unfiltered)
    listed = [d["id"] for d in client.get("/v1/devices", headers=a.headers, params={"limit": 1000}).json()]
    assert device_a.id in listed and device_b.id not in listed
    assert client.get(f"/v1/devices/{device_b.id}", headers=a.headers).status_code == 404
    assert client.post(f"/v1/devices/{device_b.id}/disable", headers=a.headers).status_code == 404
