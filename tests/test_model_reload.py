"""Model reload as operators do it (issue #13): gunicorn with 4 workers at their default
poll (10 s) on PostgreSQL, predicting without pause, while a model is promoted, rolled
back, and a broken version is offered. No request fails, a version that does not load
is refused, and every answer begun 2 s after an activation comes from the new version:
workers hear of it as it commits (LISTEN/NOTIFY), they do not wait for their poll."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.models import lifecycle
from tests.conftest import PASSWORD, login
from tests.factories import batch_json, bundled_version, model_registry, registered_variant, run_lifecycle
from tests.postgres import PostgresServer
from tests.processes import GunicornServer

CLIENTS = 8
FOLLOW_SECONDS = 2.0


def test_every_worker_follows_promote_and_rollback_within_2_s_under_load(tmp_path):
    current = bundled_version("server")
    registry = model_registry(tmp_path, current)
    registered_variant(registry, current, "server-93", 0.99)  # the newest: a fresh database activates it
    night = {"epochs": [{"features": epoch["features"]} for epoch in batch_json(range(30))["epochs"]]}
    answers: list[tuple[float, float, int, str | None]] = []  # (began, ended, status, model version)
    running = threading.Event()
    running.set()

    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "ops", "ops@example.com", PASSWORD))
        server = GunicornServer(pg.url, str(tmp_path), workers=4, registry_dir=registry)
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                user = login(client, "ops@example.com")

            def predict_without_pause() -> None:
                # A new connection each time, so that every worker gets a share.
                while running.is_set():
                    began = time.monotonic()
                    response = httpx.post(f"{server.url}/v1/predict", headers=user, json=night, timeout=30)
                    version = response.json().get("model_version") if response.status_code == 200 else None
                    answers.append((began, time.monotonic(), response.status_code, version))

            with ThreadPoolExecutor(CLIENTS) as pool:
                for _ in range(CLIENTS):
                    pool.submit(predict_without_pause)
                time.sleep(1.0)
                promote = lambda conn, store: lifecycle.promote(conn, store, current, "ops", "test", force=True)  # noqa: E731
                run_lifecycle(pg.url, registry, promote)
                promoted = time.monotonic()
                time.sleep(FOLLOW_SECONDS + 1.5)
                rolling_back = time.monotonic()  # answers ended after this may come from either
                run_lifecycle(
                    pg.url, registry, lambda conn, store: lifecycle.rollback(conn, store, "server", "ops", "")
                )
                rolled_back = time.monotonic()
                time.sleep(FOLLOW_SECONDS + 1.5)
                registered_variant(registry, current, "server-94", 0.999)
                (registry / "server-94" / "weights.npz").write_bytes(b"broken")
                broken = lambda conn, store: lifecycle.promote(conn, store, "server-94", "ops", "")  # noqa: E731
                with pytest.raises(lifecycle.LifecycleError, match="does not load"):
                    run_lifecycle(pg.url, registry, broken)
                time.sleep(1.0)
                running.clear()
        finally:
            server.terminate()

    assert [status for _, _, status, _ in answers if status != 200] == []
    # Begun 2 s after the promotion, and answered before the rollback began.
    after_promote = {v for began, ended, _, v in answers if began >= promoted + FOLLOW_SECONDS and ended < rolling_back}
    after_rollback = {v for began, _, _, v in answers if began >= rolled_back + FOLLOW_SECONDS}
    assert after_promote == {current}
    assert after_rollback == {"server-93"}
    assert len(answers) > 100  # the load really ran across the changes
