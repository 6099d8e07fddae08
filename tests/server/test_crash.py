"""kill -9 of the server in the middle of an ingest: each epoch ends stored exactly once
or still on the device, never half a batch, never twice."""

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from tests.conftest import PASSWORD, bearer, login, register_device
from tests.factories import batch_json, stored_seqs
from tests.postgres import PostgresServer
from tests.processes import ServerProcess

BATCH = 2000
LIMITS = {"max_batch_epochs": BATCH, "max_body_bytes": 4 * 1024 * 1024}
# 10,000 epochs span 83 hours: start far enough back that none is in the future.
START = datetime.now(UTC).replace(microsecond=0, second=0) - timedelta(days=5)


def test_server_killed_mid_ingest_loses_nothing_and_duplicates_nothing(tmp_path):
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "crash", "crash@example.com", PASSWORD))
        server = ServerProcess(pg.url, str(tmp_path), **LIMITS)
        with httpx.Client(base_url=server.url) as client:
            registered = register_device(client, login(client, "crash@example.com"))
        device_id = registered.id
        credentials = {"device_id": device_id, "secret": registered.secret}

        unacknowledged: list[range] = []  # what the device still holds
        outcomes = []
        for round_number, delay in enumerate((0.02, 0.05, 0.1, 0.2, 0.4)):
            seqs = range(round_number * BATCH, (round_number + 1) * BATCH)
            token = httpx.post(f"{server.url}/v1/auth/device-token", json=credentials).json()["access_token"]
            result: dict = {}

            def upload(seqs=seqs, token=token, result=result):
                try:
                    result["ack"] = httpx.post(
                        f"{server.url}/v1/epochs:ingest",
                        json=batch_json(seqs, start=START),
                        headers=bearer(token),
                        timeout=30,
                    ).json()
                except httpx.TransportError:
                    result["ack"] = None

            sender = threading.Thread(target=upload)
            sender.start()
            time.sleep(delay)
            server.kill()
            sender.join()
            outcomes.append(result["ack"] is not None)
            if result["ack"] is None or result["ack"]["ack_seq"] < seqs[-1]:
                unacknowledged.append(seqs)
            server = ServerProcess(pg.url, str(tmp_path), **LIMITS)

        assert not all(outcomes), "no upload was cut: the kill never landed mid-request"
        # Whatever a killed request committed is all of its batch or none of it.
        stored = set(stored_seqs(pg.url, device_id))
        for round_number in range(5):
            part = set(range(round_number * BATCH, (round_number + 1) * BATCH)) & stored
            assert len(part) in (0, BATCH), f"round {round_number}: half a batch stored"

        # The device resends what it holds; afterwards everything is there once.
        token = httpx.post(f"{server.url}/v1/auth/device-token", json=credentials).json()["access_token"]
        for seqs in unacknowledged:
            ack = httpx.post(
                f"{server.url}/v1/epochs:ingest", json=batch_json(seqs, start=START), headers=bearer(token), timeout=60
            ).json()
        server.kill()
        assert ack["ack_seq"] == 5 * BATCH - 1, (ack["rejected"][:3], [len(r) for r in unacknowledged])
        assert stored_seqs(pg.url, device_id) == list(range(5 * BATCH))
