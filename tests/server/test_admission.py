"""Bounded work per worker (issue #9): a full worker refuses at once with 503 +
Retry-After, a request past its deadline is cancelled with nothing stored, and a
failing database opens the circuit breaker so requests fail fast until it is back."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.admission import Breaker, Deadlines
from tests.conftest import PASSWORD, LiveServer, login, make_settings, register_device
from tests.factories import batch_json, stored_seqs, write_lock_held
from tests.postgres import PostgresServer
from tests.slow_upload import Trickle


def assert_refused_at_once(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    assert elapsed < 0.5, f"a refusal must be fast, took {elapsed:.2f} s"


def test_a_full_worker_refuses_at_once_and_health_still_answers(database_url, tmp_path, make_tenant):
    settings = make_settings(database_url, tmp_path, max_concurrent_requests=2)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = make_tenant()
        devices = [register_device(client, login(client, tenant.email), f"d{i}") for i in range(3)]
        with write_lock_held(database_url, 2.0):
            # Two uploads wait on the lock: every processing slot is taken.
            with ThreadPoolExecutor(2) as pool:
                waiting = [
                    pool.submit(client.post, "/v1/epochs:ingest", json=batch_json(range(5)), headers=d.headers)
                    for d in devices[:2]
                ]
                time.sleep(0.5)
                started = time.monotonic()
                refused = client.post("/v1/epochs:ingest", json=batch_json(range(5)), headers=devices[2].headers)
                assert_refused_at_once(refused, time.monotonic() - started)
                assert refused.json()["detail"] == "the server is at capacity; retry later"
                assert client.get("/healthz").status_code == 200
                answers = [w.result() for w in waiting]
        assert all(a.status_code in (200, 503) for a in answers)
        again = client.post("/v1/epochs:ingest", json=batch_json(range(5)), headers=devices[2].headers)
        assert again.status_code == 200


def test_trickled_uploads_hold_no_slot_and_are_cut_at_their_deadline(database_url, tmp_path, make_tenant):
    settings = make_settings(database_url, tmp_path, max_concurrent_requests=2, body_deadline_seconds=1.0)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = make_tenant()
        device = register_device(client, login(client, tenant.email))
        body = json.dumps(batch_json(range(5))).encode()
        slow = [Trickle(server.url, device.headers, body, pause=0.1) for _ in range(5)]
        for upload in slow:
            upload.start()
            assert upload.sent_headers.wait(5)
        # Five slow bodies on the way, two processing slots: other uploads still get in.
        ok = client.post("/v1/epochs:ingest", json=batch_json(range(100, 105)), headers=device.headers)
        assert ok.status_code == 200
        started = time.monotonic()
        for upload in slow:
            upload.join(10)
            assert upload.status == 503
        assert time.monotonic() - started < 3
        assert stored_seqs(database_url, device.id) == list(range(100, 105))


def test_a_request_past_its_deadline_is_cancelled_and_stores_nothing(database_url, tmp_path, make_tenant):
    settings = make_settings(database_url, tmp_path, request_deadline_seconds=1.0, db_lock_timeout_ms=30_000)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        tenant = make_tenant()
        device = register_device(client, login(client, tenant.email))
        with write_lock_held(database_url, 3.0):
            started = time.monotonic()
            late = client.post("/v1/epochs:ingest", json=batch_json(range(5)), headers=device.headers)
            assert late.status_code == 503 and "too long" in late.json()["detail"]
            if database_url.startswith("postgresql"):
                # SQLite's driver thread cannot be interrupted: there the answer waits for the lock.
                assert time.monotonic() - started < 2.5
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


def test_a_probe_that_is_never_processed_lets_the_next_request_probe():
    breaker = Breaker(min_failures=1, cooldown_seconds=0.0)
    breaker.record(database_fault=True)
    assert breaker.state == "open"
    assert breaker.allow() and breaker.state == "half_open"  # the probe
    assert not breaker.allow()  # one probe at a time
    breaker.abandon_probe()  # shed, or its client went away: it learnt nothing
    assert breaker.allow()
    breaker.record(database_fault=False)
    assert breaker.state == "closed" and breaker.allow()


def test_one_timer_cancels_a_task_past_its_deadline_and_only_that_task():
    async def scenario() -> None:
        deadlines = Deadlines(resolution=0.01)
        enforcer = asyncio.create_task(deadlines.enforce())

        async def wait(seconds: float, deadline_seconds: float) -> str:
            with deadlines.start(deadline_seconds):
                await asyncio.sleep(seconds)
            return "done"

        slow, quick = asyncio.create_task(wait(5, 0.05)), asyncio.create_task(wait(0.1, 1))
        with pytest.raises(TimeoutError):
            await slow
        assert await quick == "done"

        # Cancelled from elsewhere (a client gone, a shutdown): stays a cancellation.
        gone = asyncio.create_task(wait(5, 1))
        await asyncio.sleep(0.02)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone

        # A deadline moved later is not enforced at the first one.
        async def moved() -> str:
            with deadlines.start(0.03) as deadline:
                deadline.move(1)
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.01)  # no stray cancellation after the block
            return "done"

        assert await moved() == "done"
        assert deadlines.watched == {}
        enforcer.cancel()

    asyncio.run(scenario())
