"""Promote, hot reload and roll back, on a server with its own registry and database."""

import asyncio
import json
import shutil
import time

import httpx
import pytest

from model_export.__main__ import DEFAULT_REGISTRY
from sync_server import migrate
from sync_server.db import engine_for_job
from sync_server.models import lifecycle
from sync_server.models.service import ModelStore
from tests.conftest import LiveServer, make_settings
from tests.factories import bundled_version


def _variant(registry, source, version, kappa4):
    shutil.copytree(DEFAULT_REGISTRY / source, registry / version)
    manifest = json.loads((registry / version / "manifest.json").read_text())
    manifest["version"] = version
    manifest["metrics"]["kappa4"] = kappa4
    (registry / version / "manifest.json").write_text(json.dumps(manifest))


def _run(url, registry, call):
    async def go():
        async with engine_for_job(url) as engine, engine.begin() as conn:
            return await call(conn, ModelStore(registry))

    return asyncio.run(go())


def _wait_for_model(client, version):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ready = client.get("/readyz").json()
        if ready.get("server_model") == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"server never loaded {version}: {ready}")


def test_promote_hot_reload_and_rollback(tmp_path):
    registry = tmp_path / "registry"
    registry.mkdir()
    current = bundled_version("server")
    shutil.copytree(DEFAULT_REGISTRY / current, registry / current)
    score = json.loads((registry / current / "manifest.json").read_text())["metrics"]["kappa4"]
    _variant(registry, current, "server-90", score - 0.05)  # worse
    _variant(registry, current, "server-91", score + 0.01)  # better
    url = f"sqlite+aiosqlite:///{tmp_path / 'lifecycle.db'}"
    migrate.upgrade(url)
    settings = make_settings(url, tmp_path, registry_dir=registry, model_poll_seconds=0.1)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as client:
        _wait_for_model(client, "server-91")  # a fresh database activates the newest registered

        # Back to the bundled one by rollback? Nothing before it yet.
        with pytest.raises(lifecycle.LifecycleError, match="nothing to roll back"):
            _run(url, registry, lambda conn, store: lifecycle.rollback(conn, "server", "test", ""))
        with pytest.raises(lifecycle.LifecycleError, match="below the active"):
            _run(url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-90", "test", ""))
        _run(
            url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-90", "test", "canary", force=True)
        )
        _wait_for_model(client, "server-90")
        previous = _run(url, registry, lambda conn, store: lifecycle.rollback(conn, "server", "test", "bad canary"))
        assert previous == "server-91"
        _wait_for_model(client, "server-91")
        with pytest.raises(lifecycle.LifecycleError, match="not a registered model"):
            _run(url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-404", "test", ""))
        trail = _run(url, registry, lambda conn, store: lifecycle.history(conn, "server"))
        assert [(r["version"], r["actor"]) for r in trail] == [
            ("server-91", "bootstrap"),
            ("server-90", "test"),
            ("server-91", "test"),
        ]


def test_a_broken_artifact_is_never_promoted(tmp_path):
    registry = tmp_path / "registry"
    registry.mkdir()
    current = bundled_version("server")
    shutil.copytree(DEFAULT_REGISTRY / current, registry / current)
    _variant(registry, current, "server-95", 0.99)
    (registry / "server-95" / "weights.npz").write_bytes(b"tampered")
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    migrate.upgrade(url)
    with pytest.raises(lifecycle.LifecycleError, match="does not load"):
        _run(url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-95", "test", ""))
