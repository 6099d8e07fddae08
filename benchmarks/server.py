"""Ingest and predict figures of the real server on PostgreSQL with TimescaleDB.

    make bench        (or: .venv/bin/python -m benchmarks.server)

Starts a throwaway PostgreSQL (with TimescaleDB when it is installed: `make bench` builds
it), the server as operators run it (gunicorn with deploy/gunicorn.conf.py, two
Uvicorn workers: one per core) and drives it from wrk, a C load generator, so that the client costs
the two cores little:

- live uploads: one device sends one epoch per request, its table holding 100 days of
  history (100 one-day chunks, compressed): p50 and p99;
- ingest: 100 devices drain their nights in 200-epoch binary batches, 32 requests in
  flight for 10 s: epochs stored per second and p95 per request;
- the floor: GET /healthz (no database, no auth) under the same 32-way load;
- predict: 32 clients asking for whole stored nights (8 hours, 960 epochs) that ended;
- storage: bytes per epoch once every chunk is compressed.

The server runs at its defaults but one: max_concurrent_requests is raised to 64 so that
32 clients on 2 workers are served rather than shed. Prints figures; asserts only that
every request succeeded. The last six lines are the figures README quotes.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text

from noctis_contract.blocks import Block, encode_block
from noctis_contract.features import EPOCH_SECONDS, quantize
from sync_server import migrate, storage
from sync_server.__main__ import bootstrap_tenant
from sync_server.db import engine_for_job
from tests.conftest import login, register_device
from tests.postgres import PostgresServer
from tests.processes import GunicornServer

PASSWORD = "benchmark-password"
WORKERS = 2
CONCURRENCY = 32
WRK_THREADS = 2  # wrk's threads: line n of a request list is sent by thread n % WRK_THREADS
BATCH = 200  # epochs per ingest request
NIGHT = 960  # epochs in 8 hours
DEVICES = 100
NIGHTS = 4  # per device: more batches than 10 s can take, so that none is sent twice
HISTORY_DAYS = 100
BLOCKS = {"content-type": "application/octet-stream"}

# wrk runs this in each of its threads: the requests of a list file (one line each:
# method, path, authorization, body file) in order, split across threads, from the
# start again when they run out. Like the HTTP clients people use (browsers, httpx,
# requests), every request accepts gzip. Prints the figures as one JSON line at the end,
# with wrk's own count of answers of 400 and above as "failed": a Lua response() hook
# would count them too, but makes wrk copy every answer into Lua, and wrk shares the
# server's two cores.
WRK_SCRIPT = r"""
local requests, next_request = {}, 0
local thread_count = 0
function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
end
function init(args)
  local index = 0
  for line in io.lines(args[1]) do
    local method, path, authorization, file = line:match("(%S+) (%S+) (%S+) (%S+)")
    if index % tonumber(args[2]) == id then
      local body = nil
      if file ~= "-" then local f = io.open(file, "rb"); body = f:read("*a"); f:close() end
      local headers = {["Authorization"] = "Bearer " .. authorization, ["Accept-Encoding"] = "gzip"}
      if body then
        headers["Content-Type"] = file:match("%.json$") and "application/json" or "application/octet-stream"
      end
      table.insert(requests, wrk.format(method, path, headers, body))
    end
    index = index + 1
  end
  -- A thread without requests would hold its connections and send nothing.
  assert(#requests > 0, "wrk thread " .. id .. " has no requests: the list needs a line for every thread")
end
function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end
function done(summary, latency)
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50_ms": %f, "p95_ms": %f, "max_ms": %f, "failed": %d, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    latency.max / 1e3,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(url: str, work: Path, lines: list[str], seconds: float, pids: list[int]) -> dict[str, Any]:
    """Drive the server with CONCURRENCY connections from wrk's threads for `seconds`,
    once its workers are idle. The figures include how many of the connections each
    worker took (`connections`): a worker holds a connection for the whole run, so an
    uneven split makes the busier worker's answers slower."""
    wait_until_idle(pids)
    # Each thread sends only its own lines: a thread given none would hold its
    # connections open and send nothing (the floor's one line once ran on half the load).
    lines = lines * math.ceil(WRK_THREADS / len(lines))
    listing = work / f"requests-{uuid.uuid4().hex[:6]}.txt"
    listing.write_text("\n".join(lines) + "\n")
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{CONCURRENCY}",
        f"-d{seconds:.0f}s",
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    run = subprocess.Popen([*command, "--", str(listing), str(WRK_THREADS)], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    connections = connections_per_worker(pids, int(url.rsplit(":", 1)[1]))
    stdout, _ = run.communicate()
    if run.returncode:
        raise RuntimeError(f"wrk failed ({run.returncode}):\n{stdout}")
    figures: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    if figures["failed"] or figures["errors"]:
        raise RuntimeError(f"{figures['failed']} answers were errors, {figures['errors']} socket errors:\n{stdout}")
    figures["connections"] = "/".join(map(str, connections))
    return figures


def wait_until_idle(pids: list[int], most_cpu: float = 0.05, seconds: float = 30) -> None:
    """Until the workers use under most_cpu of a core: the work of the run before (an
    ingest batch still being stored) must not weigh on the next."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = worker_cpu_seconds(pids)
        time.sleep(0.5)
        if worker_cpu_seconds(pids) - before < most_cpu * 0.5:
            return


def connections_per_worker(pids: list[int], port: int) -> list[int]:
    """The established connections to the server's port each worker holds (proc(5):
    /proc/net/tcp lists the sockets, /proc/<pid>/fd which process holds them)."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                sockets.add(f"socket:[{fields[9]}]")
    counts = []
    for pid in pids:
        held = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                held += os.readlink(fd) in sockets
            except OSError:  # closed meanwhile
                pass
        counts.append(held)
    return counts


def night_codes(seed: int, epochs: int) -> np.ndarray:
    from model_export.simulator import simulate_night

    return quantize(simulate_night(seed, hours=epochs / 120 + 0.1).features)[:epochs]


def batch_body(codes: np.ndarray, first_seq: int, first_start: int) -> bytes:
    stages = np.zeros(len(codes), dtype=np.uint8)
    return encode_block(Block(first_seq, first_start, 1, codes, stages))


async def add_history(database_url: str, device_id: str) -> int:
    """HISTORY_DAYS of a device's past (one epoch per 15 minutes), compressed as the
    policy would: the table then has a chunk per day to plan over. Returns its last seq."""
    now = datetime.now(UTC)
    epochs = HISTORY_DAYS * 96
    async with engine_for_job(database_url) as engine, engine.begin() as conn:
        codes = ", ".join(f"((i + {k}) % 200)::smallint" for k in range(15))
        await conn.execute(
            text(
                "INSERT INTO epochs (device_id, tenant_id, seq, start_time, hr_mean, hr_std, ibi_rmssd, "
                "resp_rate_mean, resp_rate_std, resp_amplitude, resp_regularity, presence_ratio, target_distance, "
                "radar_motion, activity_count, accel_std, accel_peak, movement_events, hours_since_start, edge_stage) "
                f"SELECT d.id, d.tenant_id, i, CAST(:first AS timestamptz) + i * INTERVAL '15 minutes', "
                f"{codes}, 1 "
                "FROM devices d, generate_series(0, :last) i WHERE d.id = CAST(:device AS uuid)"
            ),
            {"first": now - timedelta(days=HISTORY_DAYS + 1), "last": epochs - 1, "device": device_id},
        )
        await conn.execute(
            text("UPDATE devices SET ack_seq = :last, stored_seq = :last WHERE id = CAST(:device AS uuid)"),
            {"last": epochs - 1, "device": device_id},
        )
        if await storage.timescaledb_active(conn):
            await conn.execute(
                text("SELECT compress_chunk(c) FROM show_chunks('epochs', older_than => INTERVAL '1 day') c")
            )
    return epochs - 1


async def storage_figures(database_url: str, compress: bool) -> tuple[int, float | None, int]:
    """Epochs stored; with compress, compress every chunk and give the compressed bytes per
    epoch (None without TimescaleDB) and the number of chunks."""
    async with engine_for_job(database_url) as engine, engine.begin() as conn:
        stored = int((await conn.execute(text("SELECT count(*) FROM epochs"))).scalar() or 0)
        if not compress or not await storage.timescaledb_active(conn):
            return stored, None, 0
        await conn.execute(text("SELECT compress_chunk(c, true) FROM show_chunks('epochs') c"))
        compressed = (
            await conn.execute(text("SELECT sum(after_compression_total_bytes) FROM chunk_compression_stats('epochs')"))
        ).scalar()
        chunks = int((await conn.execute(text("SELECT count(*) FROM show_chunks('epochs')"))).scalar() or 0)
        return stored, float(compressed) / stored, chunks


def main() -> None:
    with PostgresServer() as pg, tempfile.TemporaryDirectory() as work_dir:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "bench", "bench@example.com", PASSWORD))
        server = GunicornServer(pg.url, work_dir, workers=WORKERS, max_concurrent_requests=64)
        try:
            run(server.url, pg, Path(work_dir), server.worker_pids())
        finally:
            server.terminate()


def worker_cpu_seconds(pids: list[int]) -> float:
    """User and system CPU the server's workers have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5))
    return total / os.sysconf("SC_CLK_TCK")


def run(url: str, pg: PostgresServer, work: Path, pids: list[int]) -> None:
    storage = "TimescaleDB" if pg.timescaledb else "plain PostgreSQL (TimescaleDB is not installed)"
    print(f"server {url}: {WORKERS} Uvicorn workers on {storage}; wrk with {CONCURRENCY} connections\n")
    with httpx.Client(base_url=url, timeout=60) as client:
        user = login(client, "bench@example.com", PASSWORD)
        user_token = user["Authorization"].split()[1]
        now = int(time.time())

        # Live: one epoch per request, on top of 100 days of history.
        live = register_device(client, user, "live")
        last_seq = asyncio.run(add_history(pg.url, live.id))
        codes = night_codes(1, 300)
        headers = {**live.headers, **BLOCKS}
        latencies = []
        for i in range(300):
            body = batch_body(codes[i : i + 1], last_seq + 1 + i, now - 3 * 3600 + EPOCH_SECONDS * i)
            started = time.perf_counter()
            answer = client.post("/v1/epochs:ingest", content=body, headers=headers)
            latencies.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text
        live_p50, live_p99 = np.percentile(latencies, [50, 99])
        print(f"live upload, 1 epoch/request, 100 days of history: p50 {live_p50:.1f} ms, p99 {live_p99:.1f} ms")

        # Ingest: DEVICES devices drain NIGHTS nights each in BATCH-epoch requests, round
        # robin, so that one device's batches are far apart.
        devices = [register_device(client, user, f"fleet-{i}") for i in range(DEVICES)]
        night_start = now - (NIGHTS + 1) * 86400
        batches: list[list[str]] = []
        for d, device in enumerate(devices):
            token = device.headers["Authorization"].split()[1]
            batches.append([])
            for night in range(NIGHTS):
                codes = night_codes(100 * d + night, NIGHT)
                for first in range(night * NIGHT, (night + 1) * NIGHT, BATCH):
                    path = work / f"d{d}-{first}.bin"
                    start = night_start + night * 86400 + EPOCH_SECONDS * (first - night * NIGHT)
                    path.write_bytes(batch_body(codes[first - night * NIGHT :][:BATCH], first, start))
                    batches[-1].append(f"POST /v1/epochs:ingest {token} {path}")
        lines = [line for round_robin in zip(*batches) for line in round_robin]
        before, _, _ = storage_figures_sync(pg.url, compress=False)
        ingest = wrk(url, work, lines, seconds=10, pids=pids)
        after, _, _ = storage_figures_sync(pg.url, compress=False)
        if ingest["requests"] > len(lines):
            print(f"(all {len(lines)} batches were sent and some again: the rate below is a lower bound)")
        ingest_rate = (after - before) / ingest["seconds"]
        print(
            f"ingest, {DEVICES} devices in {BATCH}-epoch batches: {ingest_rate:,.0f} epochs/s stored, "
            f"p50 {ingest['p50_ms']:.1f} ms, p95 {ingest['p95_ms']:.1f} ms per request"
        )

        # The framework's floor under the same load.
        cpu_before = worker_cpu_seconds(pids)
        floor = wrk(url, work, [f"GET /healthz {user_token} -"], seconds=10, pids=pids)
        floor_cpu_ms = 1000 * (worker_cpu_seconds(pids) - cpu_before) / floor["requests"]
        print(
            f"floor, GET /healthz: {floor['requests'] / floor['seconds']:,.0f} requests/s, "
            f"p50 {floor['p50_ms']:.1f} ms, p95 {floor['p95_ms']:.1f} ms, "
            f"{floor_cpu_ms:.2f} ms of worker CPU a request, connections per worker {floor['connections']}"
        )

        # Predict: whole ended nights (each device's first), each scored once and then
        # served from storage.
        started_at = datetime.fromtimestamp(night_start, UTC)
        ended_at = started_at + timedelta(seconds=EPOCH_SECONDS * NIGHT)
        recordings = []
        for device in devices[:64]:
            window = {"device_id": device.id, "started_at": started_at.isoformat(), "ended_at": ended_at.isoformat()}
            recording = client.post("/v1/recordings", headers=user, json=window).json()
            # Drained by the ingest run or not, the night is whole once sent here.
            for first in range(0, NIGHT, BATCH):
                body = (work / f"d{devices.index(device)}-{first}.bin").read_bytes()
                sent = client.post("/v1/epochs:ingest", content=body, headers={**device.headers, **BLOCKS})
                assert sent.status_code == 200, sent.text
            scored = client.post("/v1/predict", headers=user, json={"recording_id": recording["id"]})
            assert scored.status_code == 200 and len(scored.json()["epochs"]) == NIGHT, scored.text
            path = work / f"predict-{recording['id']}.json"
            path.write_text(json.dumps({"recording_id": recording["id"]}))
            recordings.append(f"POST /v1/predict {user_token} {path}")
        # Unmeasured: each worker reads and compresses each night at its first ask, then
        # keeps it. The figures below are the steady state that follows: warm until no
        # answer took long (a first ask, queued behind the others, takes seconds, and
        # wrk counts a slow answer as the ones it kept from being sent).
        warm_ups = 1
        while wrk(url, work, recordings, seconds=5, pids=pids)["max_ms"] >= 100 and warm_ups < 6:
            warm_ups += 1
        print(f"(predict warmed up in {warm_ups} runs of 5 s)")
        cpu_before = worker_cpu_seconds(pids)
        predict = wrk(url, work, recordings, seconds=20, pids=pids)
        predict_cpu_ms = 1000 * (worker_cpu_seconds(pids) - cpu_before) / predict["requests"]
        predict_rps = predict["requests"] / predict["seconds"]
        print(
            f"predict a stored 8-hour night, {CONCURRENCY} clients: {predict_rps:,.0f} requests/s, "
            f"p50 {predict['p50_ms']:.1f} ms, p95 {predict['p95_ms']:.1f} ms, "
            f"{predict_cpu_ms:.2f} ms of worker CPU a request, connections per worker {predict['connections']}"
        )
        ask = {"recording_id": recording["id"]}  # one of the nights, kept: as wrk's clients got it
        with client.stream("POST", "/v1/predict", headers={**user, "accept-encoding": "gzip"}, json=ask) as answer:
            gzipped = sum(len(chunk) for chunk in answer.iter_raw())
        plain = client.post("/v1/predict", headers={**user, "accept-encoding": "identity"}, json=ask).content
        print(f"a night's answer: {len(plain) / 1000:.0f} KB of JSON, {gzipped / 1000:.1f} KB sent gzip-compressed")

    stored, per_epoch, chunks = storage_figures_sync(pg.url, compress=True)
    if per_epoch is not None:
        print(f"storage: {stored:,} epochs in {chunks} chunks, all compressed: {per_epoch:.1f} bytes per epoch")
    print()
    print(f"ingest_epochs_per_s={ingest_rate:.0f}")
    print(f"ingest_p95_ms={ingest['p95_ms']:.1f}")
    print(f"predict_p95_ms={predict['p95_ms']:.1f}")
    print(f"predict_rps={predict_rps:.0f}")
    print(f"floor_p95_ms={floor['p95_ms']:.1f}")
    print(f"bytes_per_epoch_compressed={'n/a' if per_epoch is None else f'{per_epoch:.1f}'}")


def storage_figures_sync(database_url: str, compress: bool) -> tuple[int, float | None, int]:
    return asyncio.run(storage_figures(database_url, compress))


if __name__ == "__main__":
    main()
