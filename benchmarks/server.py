"""Ingest and predict figures of a real server process on a real PostgreSQL.

    .venv/bin/python -m benchmarks.server      (or: make bench)

Starts a throwaway PostgreSQL, runs `python -m sync_server serve` against it in its own
process (one Uvicorn worker), and measures from this process over loopback:
live single-epoch uploads (latency), bulk binary blocks (epochs per second, one and
eight devices at once), JSON batches, and /v1/predict on an 8-hour night. Prints the
figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np

from noctis_contract.blocks import MAX_EPOCHS_PER_BLOCK, Block, encode_block
from noctis_contract.features import EPOCH_SECONDS, quantize
from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from tests.conftest import login, register_device
from tests.postgres import PostgresServer, free_port

PASSWORD = "benchmark-password"
NIGHT = 960  # epochs in 8 hours


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def start_of_night() -> int:
    start = int((datetime.now(UTC) - timedelta(days=2)).timestamp())
    return start - start % EPOCH_SECONDS


def night_blocks(seed: int, first_start: int) -> list[bytes]:
    from model_export.simulator import simulate_night

    codes = quantize(simulate_night(seed, hours=NIGHT / 120).features)[:NIGHT]
    stages = np.zeros(len(codes), dtype=np.uint8)
    return [
        encode_block(
            Block(
                i,
                first_start + EPOCH_SECONDS * i,
                1,
                codes[i : i + MAX_EPOCHS_PER_BLOCK],
                stages[i : i + MAX_EPOCHS_PER_BLOCK],
            )
        )
        for i in range(0, len(codes), MAX_EPOCHS_PER_BLOCK)
    ]


def main() -> None:
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "bench", "bench@example.com", PASSWORD))
        port = free_port()
        env = {**os.environ, "NOCTIS_DATABASE_URL": pg.url, "NOCTIS_DATA_DIR": tempfile.mkdtemp()}
        server = subprocess.Popen(
            [sys.executable, "-m", "sync_server", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            run(f"http://127.0.0.1:{port}")
        finally:
            server.terminate()
            server.wait(timeout=30)


def run(url: str) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(100):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        user = login(client, "bench@example.com", PASSWORD)

        def new_device() -> tuple[str, dict[str, str]]:
            device = register_device(client, user, "bench")
            return device.id, {**device.headers, "content-type": "application/octet-stream"}

        first_start = start_of_night()
        print(f"server {url}, PostgreSQL, one Uvicorn worker; client in another process over loopback\n")

        # Live: one epoch per request, as a device with a good link sends them.
        device_id, headers = new_device()
        blocks = night_blocks(1, first_start)
        from noctis_contract.blocks import decode_blocks

        single = []
        for block in decode_blocks(b"".join(blocks))[:1]:
            for i in range(min(300, block.count)):
                one = Block(
                    block.first_seq + i,
                    block.first_start + EPOCH_SECONDS * i,
                    1,
                    block.codes[i : i + 1],
                    block.edge_stages[i : i + 1],
                )
                single.append(encode_block(one))
        latencies = []
        for body in single:
            started = time.perf_counter()
            assert client.post("/v1/epochs:ingest", content=body, headers=headers).status_code == 200
            latencies.append((time.perf_counter() - started) * 1000)
        print(
            f"live upload, 1 epoch/request:   p50 {percentile(latencies, 50):6.2f} ms   "
            f"p99 {percentile(latencies, 99):6.2f} ms   ({len(latencies)} requests)"
        )

        # Bulk: a device draining a night from flash, 4 blocks per request.
        device_id, headers = new_device()
        body = b"".join(blocks)
        started = time.perf_counter()
        assert client.post("/v1/epochs:ingest", content=body, headers=headers).json()["ack_seq"] == NIGHT - 1
        elapsed = time.perf_counter() - started
        print(
            f"drain one night, binary:        {NIGHT / elapsed:8.0f} epochs/s   "
            f"({NIGHT} epochs, {elapsed * 1000:.0f} ms)"
        )
        started = time.perf_counter()
        resent = client.post("/v1/epochs:ingest", content=body, headers=headers).json()
        elapsed = time.perf_counter() - started
        assert resent["duplicates"] == NIGHT
        print(f"resend of the same night:       {NIGHT / elapsed:8.0f} epochs/s   (all duplicates)")

        # Eight devices draining at once.
        fleet = [new_device() for _ in range(8)]
        bodies = [b"".join(night_blocks(10 + i, first_start)) for i in range(8)]

        def drain(args: tuple[tuple[str, dict[str, str]], bytes]) -> None:
            (_, device_headers), data = args
            with httpx.Client(base_url=url, timeout=60) as own:
                assert own.post("/v1/epochs:ingest", content=data, headers=device_headers).status_code == 200

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(drain, zip(fleet, bodies)))
        elapsed = time.perf_counter() - started
        print(f"8 devices draining at once:     {8 * NIGHT / elapsed:8.0f} epochs/s   ({8 * NIGHT} epochs)")

        # Authoritative scoring of the stored night.
        recording = client.post(
            "/v1/recordings",
            headers=user,
            json={"device_id": device_id, "started_at": datetime.fromtimestamp(first_start, UTC).isoformat()},
        ).json()
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            answer = client.post("/v1/predict", headers=user, json={"recording_id": recording["id"]})
            timings.append((time.perf_counter() - started) * 1000)
            assert len(answer.json()["epochs"]) == NIGHT
        print(
            f"predict an 8-hour night:        p50 {statistics.median(timings):6.1f} ms   "
            f"p99 {percentile(timings, 99):6.1f} ms   ({NIGHT} epochs, server model "
            f"{answer.json()['model_version']})"
        )


if __name__ == "__main__":
    main()
