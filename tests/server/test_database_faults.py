"""Database faults answer 503 with Retry-After, never 500, and nothing is lost (issue #9):
a worker that starts while PostgreSQL is down, locks held past lock_timeout, a pool
with no free connection; and only real database faults pass for one."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.db import database_fault
from tests.conftest import PASSWORD, LiveServer, login, make_settings, register_device
from tests.factories import batch_json, stored_seqs, write_lock_held
from tests.postgres import PostgresServer, free_port


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_worker_starts_while_the_database_is_down_and_serves_once_it_is_back(tmp_path):
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "late", "late@example.com", PASSWORD))
        pg.stop()
        with LiveServer(make_settings(pg.url, tmp_path)) as server, httpx.Client(base_url=server.url) as client:
            assert client.get("/healthz").status_code == 200
            assert_unavailable(client.get("/readyz"))
            assert_unavailable(client.post("/v1/auth/token", json={"email": "late@example.com", "password": PASSWORD}))
            pg.start()
            back = time.monotonic()
            device = register_device(client, login(client, "late@example.com"))
            ack = client.post("/v1/epochs:ingest", json=batch_json(range(10)), headers=device.headers)
            assert ack.status_code == 200 and ack.json()["ack_seq"] == 9
            assert time.monotonic() - back < 2.0, "served again within 2 s of the database returning"
        assert stored_seqs(pg.url, device.id) == list(range(10))


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A server whose waits are short: one pooled connection (+1 overflow), a 1 s lock timeout."""
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "tight", "tight@example.com", PASSWORD))
        waits = {"db_pool_size": 1, "db_pool_timeout_seconds": 0.5, "db_lock_timeout_ms": 1000}
        settings = make_settings(pg.url, tmp_path_factory.mktemp("tight"), **waits)
        with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            device = register_device(client, login(client, "tight@example.com"))
            yield pg, client, device


def test_a_lock_held_past_lock_timeout_answers_503_and_the_resend_is_stored(tight_server):
    pg, client, device = tight_server
    with write_lock_held(pg.url, 3.0):
        started = time.monotonic()
        assert_unavailable(client.post("/v1/epochs:ingest", json=batch_json(range(100, 110)), headers=device.headers))
        assert time.monotonic() - started < 2.5  # lock_timeout (1 s), not the 3 s the lock is held
    again = client.post("/v1/epochs:ingest", json=batch_json(range(100, 110)), headers=device.headers)
    assert again.status_code == 200 and again.json()["accepted"] == 10


def test_a_pool_with_no_free_connection_answers_503_at_once(tight_server):
    pg, client, device = tight_server
    with write_lock_held(pg.url, 2.0):

        def upload(i: int) -> httpx.Response:
            return client.post("/v1/epochs:ingest", json=batch_json(range(1000 + i, 1001 + i)), headers=device.headers)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(upload, range(8)))
    # Two requests hold the pool's two connections (waiting on the lock); the others
    # find no free connection within 0.5 s. Every one of them is a 503, none a 500.
    assert {a.status_code for a in answers} <= {200, 503}
    assert sum(a.status_code == 503 for a in answers) >= 6
    for answer in answers:
        if answer.status_code == 503:
            assert_unavailable(answer)
    assert any("no database connection free" in a.text for a in answers)


def test_only_database_faults_pass_for_database_faults():
    async def refused() -> BaseException:
        try:
            await asyncpg.connect(host="127.0.0.1", port=free_port(), user="x", timeout=5)
        except BaseException as exc:  # the exception is what we test
            return exc
        raise AssertionError("nothing listens there")

    assert database_fault(asyncio.run(refused())) is not None

    def our_own_missing_file() -> BaseException:
        try:
            open("/nonexistent/model.tflite", "rb").close()
        except OSError as exc:
            return exc
        raise AssertionError("the file exists")

    assert database_fault(our_own_missing_file()) is None
    assert database_fault(TimeoutError()) is None
    assert database_fault(ValueError("a bug")) is None
