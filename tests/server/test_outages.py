"""The database goes away mid-night: nothing is acknowledged that is not stored."""

import asyncio

import httpx

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from tests.conftest import PASSWORD, LiveServer, login, make_settings, register_device
from tests.factories import batch_json, stored_seqs
from tests.postgres import PostgresServer


def test_ingest_during_a_database_outage_answers_503_and_loses_nothing(tmp_path):
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "outage", "outage@example.com", PASSWORD))
        with LiveServer(make_settings(pg.url, tmp_path)) as server, httpx.Client(base_url=server.url) as client:
            registered = register_device(client, login(client, "outage@example.com"))
            device = registered.headers

            assert client.post("/v1/epochs:ingest", json=batch_json(range(100)), headers=device).json()["ack_seq"] == 99
            pg.stop()
            during = client.post("/v1/epochs:ingest", json=batch_json(range(100, 200)), headers=device)
            assert during.status_code == 503
            assert during.headers["retry-after"]
            assert "nothing was stored" in during.json()["detail"]
            assert client.get("/readyz").status_code == 503
            pg.start()
            # The device still holds 100..199 in flash and resends them with the next batch.
            after = client.post("/v1/epochs:ingest", json=batch_json(range(100, 300)), headers=device).json()
            assert (after["accepted"], after["duplicates"], after["ack_seq"]) == (200, 0, 299)
            assert client.get("/readyz").status_code == 200
        assert stored_seqs(pg.url, registered.id) == list(range(300))
