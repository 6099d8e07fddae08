"""Chaos (issue #9): the server under gunicorn with 4 workers, as production runs it,
through a fault proxy to PostgreSQL, while devices upload. PostgreSQL is killed with
kill -9 and restarted; the proxy blackholes and then resets every connection; a worker
is killed mid-request; gunicorn gets SIGTERM and is started again; a worker is killed
while the database is down. Afterwards: every epoch stored exactly once, no 500 was
ever answered, every 503 carried Retry-After, and the server served again within 2 s
of the database's return."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from tests.conftest import PASSWORD, Device, login, register_device
from tests.factories import batch_json, stored_seqs
from tests.faultproxy import FaultProxy
from tests.postgres import PostgresServer
from tests.processes import REPO_ROOT, GunicornServer
from tests.slow_upload import Trickle

DEVICES = 8
EPOCHS_PER_STEP = 5


class Uploader(threading.Thread):
    """A client that uploads like a device: everything not yet acknowledged, again and
    again, honouring Retry-After (shortened: the test has no minutes to spare)."""

    def __init__(self, url: str, headers: dict[str, str], statuses: collections.Counter[int]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.statuses = url, headers, statuses
        self.generated, self.acked = 0, -1
        self.producing = threading.Event()
        self.producing.set()
        self.missing_retry_after = 0
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while self.producing.is_set() or self.acked < self.generated - 1:
                if self.producing.is_set():
                    self.generated += EPOCHS_PER_STEP
                try:
                    response = client.post(
                        "/v1/epochs:ingest",
                        json=batch_json(range(self.acked + 1, self.generated)),
                        headers=self.headers,
                    )
                except httpx.TransportError:  # gunicorn restarting, a worker killed mid-request
                    time.sleep(0.1)
                    continue
                self.statuses[response.status_code] += 1
                if response.status_code == 200:
                    self.acked = response.json()["ack_seq"]
                elif response.status_code == 503:
                    self.missing_retry_after += "retry-after" not in response.headers
                time.sleep(0.05 if response.status_code == 200 else 0.2)
        self.done.set()


def first_success_after(client: httpx.Client, headers: dict[str, str], seqs: range) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 30:
        try:
            if client.post("/v1/epochs:ingest", json=batch_json(seqs), headers=headers).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return float("inf")


def test_the_server_under_gunicorn_through_database_and_worker_faults(tmp_path):
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "chaos", "chaos@example.com", PASSWORD))
        proxy = FaultProxy(pg.port)
        proxied_url = pg.url.replace(f":{pg.port}/", f":{proxy.port}/")
        server = GunicornServer(proxied_url, str(tmp_path))
        statuses: collections.Counter[int] = collections.Counter()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                user = login(client, "chaos@example.com")
                devices = [register_device(client, user, f"chaos-{i}") for i in range(DEVICES)]
                probe = register_device(client, user, "probe")
                uploaders = [Uploader(server.url, d.headers, statuses) for d in devices]
                for uploader in uploaders:
                    uploader.start()
                time.sleep(2)

                pg.kill()  # kill -9, postmaster and backends
                time.sleep(2)
                pg.start()
                time.sleep(2)

                proxy.blackhole = True  # packets vanish: queries hang until the proxy resets
                time.sleep(3)
                proxy.blackhole = False
                proxy.reset()
                time.sleep(2)

                proxy.reset()  # every connection torn down mid-transfer
                time.sleep(2)

                server.kill_worker()  # mid-request: the uploads keep the workers busy
                time.sleep(2)

                server.terminate()  # SIGTERM: graceful; then started again on the same port
                server.start()
                time.sleep(2)

                pg.kill()
                killed = server.kill_worker()  # its replacement boots while the database is down
                time.sleep(3)
                assert server.alive, "gunicorn stopped because a worker could not boot without the database"
                assert killed not in server.worker_pids() and len(server.worker_pids()) == server.workers
                pg.start()
                recovery = first_success_after(client, probe.headers, range(10))

                for uploader in uploaders:
                    uploader.producing.clear()
                for uploader in uploaders:
                    assert uploader.done.wait(90), "a device could not drain"
        finally:
            server.terminate()
            proxy.close()

        print(f"chaos: statuses {dict(statuses)}, recovery {recovery:.2f} s")
        assert recovery < 2.0, f"served again {recovery:.2f} s after the database returned"
        assert not {s for s in statuses if s >= 500} - {503}, statuses
        assert statuses[503] > 0  # the faults were felt
        assert sum(u.missing_retry_after for u in uploaders) == 0
        for device, uploader in zip(devices, uploaders):
            stored = stored_seqs(pg.url, device.id)
            assert stored == list(range(uploader.generated)), "an epoch lost or stored twice"


def rss_bytes(pid: int) -> int:
    for line in open(f"/proc/{pid}/status").read().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_one_worker_under_200_large_uploads_and_25_trickled_ones_sheds_instead_of_dying(tmp_path):
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "load", "load@example.com", PASSWORD))
        server = GunicornServer(pg.url, str(tmp_path), workers=1)  # one worker at its defaults
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                user = login(client, "load@example.com")
                devices = [register_device(client, user, f"load-{i}") for i in range(8)]
                [worker] = server.worker_pids()
                night = tmp_path / "night.json"  # an 8-hour night: 960 epochs
                night.write_bytes(json.dumps(batch_json(range(960))).encode())

                # Warm up as many uploads at once as the worker processes: every code path has
                # run and the heap has reached its working size. What the load adds after
                # that is what must not stay.
                def warm_up(device: Device) -> None:
                    headers = {**device.headers, "content-type": "application/json"}
                    assert client.post("/v1/epochs:ingest", content=night.read_bytes(), headers=headers).is_success

                with ThreadPoolExecutor(len(devices)) as pool:
                    list(pool.map(warm_up, devices))
                before = rss_bytes(worker)

                slow = [Trickle(server.url, devices[i % 8].headers, night.read_bytes(), 0.5) for i in range(25)]
                for upload in slow:
                    upload.start()
                # 8 processes of 25 concurrent uploads each: the load is not limited by this test's GIL.
                clients = [
                    subprocess.Popen(
                        [sys.executable, "-m", "tests.load_client", server.url, device.headers["Authorization"], "25",
                         str(night)],
                        stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                    )
                    for device in devices
                ]  # fmt: skip
                answers = [line.split() for c in clients for line in c.communicate(timeout=300)[0].splitlines()]
                for trickle in slow:
                    trickle.stop.set()
                    trickle.join()
                time.sleep(2)
                after = rss_bytes(worker)
                workers_after = server.worker_pids()
        finally:
            server.terminate()
    statuses = collections.Counter(int(status) for status, _, _ in answers)
    refusals = sorted(float(seconds) for status, seconds, _ in answers if status == "503")
    print(
        f"overload: {dict(statuses)}, refusals p50 {refusals[len(refusals) // 2]:.2f} s, slowest {refusals[-1]:.2f} s,"
        f" worker RSS {before / 2**20:.0f} -> {after / 2**20:.0f} MiB"
    )
    assert len(answers) == 200 and set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0 and statuses[200] > 0
    assert all(retry_after == "1" for status, _, retry_after in answers if status == "503")
    # Fast: a refusal does not wait for the admitted uploads (before: 30 s, then a 500).
    # Its time is the one event loop's, shared with the uploads in process and with
    # 200 connections at once; on a 2-core machine this printed ~3 s at worst, and once
    # 5.1 s (a clean CI run on 2026-12-07): the bound keeps well clear of the 30 s wait
    # it rules out without failing on a busy machine's scheduling.
    assert refusals[-1] < 10.0
    assert workers_after == [worker], "the worker was killed (gunicorn's timeout) and replaced"
    assert after <= before * 1.2, f"worker memory grew from {before / 2**20:.0f} to {after / 2**20:.0f} MiB"
