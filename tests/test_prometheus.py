"""A real Prometheus (Debian's package) scrapes the server under gunicorn with 4
workers: the ingest counter it stores equals the rows in `epochs` (issue #9), which
holds only if every worker's counts are summed and none is lost or counted twice."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.db import engine_for_job, epochs
from tests.conftest import PASSWORD, login, register_device
from tests.factories import batch_json
from tests.postgres import PostgresServer, free_port
from tests.processes import GunicornServer

ACCEPTED = 'sum(noctis_epochs_ingested_total{outcome="accepted"})'


def stored_rows(url: str) -> int:
    async def count() -> int:
        async with engine_for_job(url) as engine, engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(epochs))).scalar_one())

    return asyncio.run(count())


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="make system-deps installs Debian's prometheus")
def test_prometheus_counts_every_epoch_the_four_workers_stored(tmp_path):
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "metrics", "metrics@example.com", PASSWORD))
        server = GunicornServer(pg.url, str(tmp_path / "server"))
        port = free_port()
        config = tmp_path / "prometheus.yml"
        target = server.url.removeprefix("http://")
        config.write_text(
            f"global: {{scrape_interval: 1s}}\nscrape_configs:\n"
            f"  - job_name: noctis\n    static_configs: [{{targets: ['{target}']}}]\n"
        )
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                user = login(client, "metrics@example.com")
                devices = [register_device(client, user, f"m-{i}") for i in range(8)]

                def upload(device_index: int) -> None:
                    device = devices[device_index]
                    for first in range(0, 400, 50):  # many requests, spread over the workers
                        batch = batch_json(range(first, first + 50))
                        assert client.post("/v1/epochs:ingest", json=batch, headers=device.headers).status_code == 200

                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(upload, range(len(devices))))
            rows = stored_rows(pg.url)
            assert rows == 8 * 400
            scraped = None
            deadline = time.monotonic() + 30
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as prom:
                while time.monotonic() < deadline:
                    try:
                        result = prom.get("/api/v1/query", params={"query": ACCEPTED}).json()["data"]["result"]
                    except (httpx.TransportError, KeyError, ValueError):
                        result = []
                    scraped = int(float(result[0]["value"][1])) if result else None
                    if scraped == rows:
                        break
                    time.sleep(0.5)
            assert scraped == rows, f"Prometheus says {scraped} epochs accepted, the database holds {rows}"
        finally:
            prometheus.terminate()
            prometheus.wait(10)
            server.terminate()
