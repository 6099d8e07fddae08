"""Bounded work per worker (issue #9): a full worker refuses at once with 503 +
Retry-After, a request past its deadline is cancelled with nothing stored, and a
failing database opens the circuit breaker so requests fail fast until it is back."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from urllib.parse import urlparse

import httpx
import pytest

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from tests.conftest import PASSWORD, LiveServer, login, make_settings, register_device
from tests.factories import batch_json, stored_seqs
from tests.postgres import PostgresServer


class Trickle(threading.Thread):
    """An upload that declares its body and then sends it a byte every `pause` seconds."""

    def __init__(self, url: str, headers: dict[str, str], body: bytes, pause: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.address, self.headers, self.body, self.pause = urlparse(url), headers, body, pause
        self.sent_headers = threading.Event()
        self.status: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with socket.create_connection((self.address.hostname, self.address.port)) as sock:
            head = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
            sock.sendall(
                f"POST /v1/epochs:ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(self.body)}\r\n{head}\r\n".encode()
            )
            self.sent_headers.set()
            sock.settimeout(self.pause)
            for i in range(len(self.body)):
                if self.stop.is_set():
                    return
                try:
                    answer = sock.recv(4096)  # the server answered before the body was complete
                    if answer:
                        self.status = int(answer.split()[1])
                        return
                except TimeoutError:
                    pass
                sock.sendall(self.body[i : i + 1])


def assert_refused_at_once(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert elapsed < 0.5, f"a refusal must be fast, took {elapsed:.2f} s"


def test_a_full_worker_refuses_at_once_and_health_still_answers(database_url, tmp_path, make_tenant):
    settings = make_settings(database_url, tmp_path, max_concurrent_requests=3)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = make_tenant()
        device = register_device(client, login(client, tenant.email))
        body = json.dumps(batch_json(range(5))).encode()
        slow = [Trickle(server.url, device.headers, body) for _ in range(3)]
        for upload in slow:
            upload.start()
            assert upload.sent_headers.wait(5)
        time.sleep(0.3)  # the three are admitted and waiting for their bodies
        started = time.monotonic()
        refused = client.post("/v1/epochs:ingest", json=batch_json(range(5, 10)), headers=device.headers)
        assert_refused_at_once(refused, time.monotonic() - started)
        assert client.get("/healthz").status_code == 200
        for upload in slow:
            upload.stop.set()
            upload.join()
        time.sleep(0.3)
        again = client.post("/v1/epochs:ingest", json=batch_json(range(5, 10)), headers=device.headers)
        assert again.status_code == 200


def test_a_request_past_its_deadline_is_cancelled_and_stores_nothing(database_url, tmp_path, make_tenant):
    settings = make_settings(database_url, tmp_path, request_deadline_seconds=1.0)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = make_tenant()
        device = register_device(client, login(client, tenant.email))
        upload = Trickle(server.url, device.headers, json.dumps(batch_json(range(5))).encode(), pause=0.1)
        started = time.monotonic()
        upload.start()
        upload.join(10)
        assert upload.status == 503
        assert time.monotonic() - started < 3
        assert stored_seqs(database_url, device.id) == []


@pytest.fixture
def postgres(tmp_path):  # type: ignore[no-untyped-def]
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "breaker", "breaker@example.com", PASSWORD))
        yield pg


def test_a_failing_database_opens_the_breaker_and_the_server_serves_again_once_it_is_back(postgres, tmp_path):
    with LiveServer(make_settings(postgres.url, tmp_path)) as server, httpx.Client(base_url=server.url) as client:
        device = register_device(client, login(client, "breaker@example.com"))
        postgres.stop()
        answers = [client.post("/v1/epochs:ingest", json=batch_json([i]), headers=device.headers) for i in range(8)]
        assert all(a.status_code == 503 and a.headers["retry-after"] for a in answers)
        assert "breaker open" in client.get("/readyz").json()["detail"]
        started = time.monotonic()
        fast = client.post("/v1/epochs:ingest", json=batch_json([0]), headers=device.headers)
        assert_refused_at_once(fast, time.monotonic() - started)
        assert "failing" in fast.json()["detail"]
        metrics = client.get("/metrics").text
        assert "noctis_db_breaker_open 1.0" in metrics
        postgres.start()
        back = time.monotonic()
        while True:
            ack = client.post("/v1/epochs:ingest", json=batch_json(range(10)), headers=device.headers)
            if ack.status_code == 200:
                break
            assert ack.status_code == 503 and time.monotonic() - back < 2.0, ack.text
            time.sleep(0.1)
        assert time.monotonic() - back < 2.0, "served again within 2 s of the database returning"
        assert client.get("/readyz").status_code == 200
    assert stored_seqs(postgres.url, device.id) == list(range(10))
