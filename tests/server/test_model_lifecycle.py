"""Promote, hot reload and roll back, on a server with its own registry and database."""

import asyncio
import json
import time

import httpx
import pytest

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.models import lifecycle
from sync_server.models.service import activate
from tests.conftest import PASSWORD, LiveServer, login, make_settings
from tests.factories import batch_json, bundled_version, model_registry, registered_variant, run_lifecycle


def _wait_for_model(client, version):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        ready = client.get("/readyz").json()
        if ready.get("server_model") == version:
            return
        time.sleep(0.05)
    raise AssertionError(f"server never loaded {version}: {ready}")


def test_promote_hot_reload_and_rollback(tmp_path):
    current = bundled_version("server")
    registry = model_registry(tmp_path, current)
    score = json.loads((registry / current / "manifest.json").read_text())["metrics"]["kappa4"]
    registered_variant(registry, current, "server-90", score - 0.05)  # worse
    registered_variant(registry, current, "server-91", score + 0.01)  # better
    url = f"sqlite+aiosqlite:///{tmp_path / 'lifecycle.db'}"
    migrate.upgrade(url)
    settings = make_settings(url, tmp_path, registry_dir=registry, model_poll_seconds=0.1)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as client:
        _wait_for_model(client, "server-91")  # a fresh database activates the newest registered

        # Back to the bundled one by rollback? Nothing before it yet.
        with pytest.raises(lifecycle.LifecycleError, match="nothing to roll back"):
            run_lifecycle(url, registry, lambda conn, store: lifecycle.rollback(conn, store, "server", "test", ""))
        with pytest.raises(lifecycle.LifecycleError, match="below the active"):
            run_lifecycle(url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-90", "test", ""))
        run_lifecycle(
            url, registry, lambda conn, store: lifecycle.promote(conn, store, current, "test", "", force=True)
        )
        _wait_for_model(client, current)
        run_lifecycle(
            url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-90", "test", "canary", force=True)
        )
        _wait_for_model(client, "server-90")
        # Rollbacks walk back through the promotions: 90 -> current -> 91, then no further.
        for expected in (current, "server-91"):
            previous = run_lifecycle(
                url, registry, lambda conn, store: lifecycle.rollback(conn, store, "server", "test", "")
            )
            assert previous == expected
            _wait_for_model(client, expected)
        with pytest.raises(lifecycle.LifecycleError, match="nothing to roll back"):
            run_lifecycle(url, registry, lambda conn, store: lifecycle.rollback(conn, store, "server", "test", ""))
        with pytest.raises(lifecycle.LifecycleError, match="not a registered model"):
            run_lifecycle(url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-404", "test", ""))
        trail = run_lifecycle(url, registry, lambda conn, store: lifecycle.history(conn, "server"))
        assert [(r["version"], r["action"]) for r in trail] == [
            ("server-91", "bootstrap"),
            (current, "promote"),
            ("server-90", "promote"),
            (current, "rollback"),
            ("server-91", "rollback"),
        ]


def test_a_version_that_does_not_load_is_never_rolled_back_to_and_a_worker_says_why_it_is_not_ready(tmp_path):
    current = bundled_version("server")
    registry = model_registry(tmp_path, current)
    registered_variant(registry, current, "server-92", 0.99)
    url = f"sqlite+aiosqlite:///{tmp_path / 'damaged.db'}"
    migrate.upgrade(url)
    asyncio.run(bootstrap_tenant(url, "lab", "lab@example.com", PASSWORD))
    settings = make_settings(url, tmp_path, registry_dir=registry, model_poll_seconds=0.1)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as client:
        _wait_for_model(client, "server-92")
        run_lifecycle(
            url, registry, lambda conn, store: lifecycle.promote(conn, store, current, "test", "", force=True)
        )
        _wait_for_model(client, current)
        (registry / "server-92" / "weights.npz").write_bytes(b"damaged on disk after its promotion")
        with pytest.raises(lifecycle.LifecycleError, match="cannot roll back to server-92: it does not load"):
            run_lifecycle(url, registry, lambda conn, store: lifecycle.rollback(conn, store, "server", "test", ""))
        # Activated anyway (by hand, in the table): the worker keeps serving what it has
        # and is not ready, saying why.
        run_lifecycle(url, registry, lambda conn, store: activate(conn, "server", "server-92", "by hand", ""))
        deadline = time.monotonic() + 5
        while (ready := client.get("/readyz")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.status_code == 503
        assert "server-92 cannot be loaded" in ready.json()["detail"] and f"serving {current}" in ready.json()["detail"]
        night = {"epochs": [{"features": epoch["features"]} for epoch in batch_json(range(30))["epochs"]]}
        staged = client.post("/v1/predict", headers=login(client, "lab@example.com"), json=night)
        assert staged.status_code == 200 and staged.json()["model_version"] == current


def test_a_broken_artifact_is_never_promoted(tmp_path):
    current = bundled_version("server")
    registry = model_registry(tmp_path, current)
    registered_variant(registry, current, "server-95", 0.99)
    (registry / "server-95" / "weights.npz").write_bytes(b"tampered")
    url = f"sqlite+aiosqlite:///{tmp_path / 'broken.db'}"
    migrate.upgrade(url)
    with pytest.raises(lifecycle.LifecycleError, match="does not load"):
        run_lifecycle(url, registry, lambda conn, store: lifecycle.promote(conn, store, "server-95", "test", ""))


def test_promotion_is_judged_on_the_nights_people_scored(tmp_path):
    from noctis_contract.features import as_sent, to_array
    from noctis_contract.stages import STAGE_LABELS
    from sync_server.__main__ import manage_models, rescore_recent
    from sync_server.models.service import load_and_warm
    from tests.conftest import register_device

    registry = model_registry(tmp_path, "server-2", "server-3")  # server-2 scores lower in the manifests
    url = f"sqlite+aiosqlite:///{tmp_path / 'labels.db'}"
    migrate.upgrade(url)
    asyncio.run(bootstrap_tenant(url, "lab", "lab@example.com", PASSWORD))
    settings = make_settings(url, tmp_path, registry_dir=registry, model_poll_seconds=0.1)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as client:
        _wait_for_model(client, "server-3")
        owner = login(client, "lab@example.com")
        device = register_device(client, owner)
        batch = batch_json(range(480))
        client.post("/v1/epochs:ingest", json=batch, headers=device.headers)
        window = {"device_id": device.id, "started_at": "2026-11-27T22:00:00Z", "ended_at": "2026-11-28T06:00:00Z"}
        labels = f"/v1/recordings/{client.post('/v1/recordings', headers=owner, json=window).json()['id']}/labels"
        night = as_sent(to_array([e["features"] for e in batch["epochs"]]))

        def scored_like(version: str) -> None:
            """People agree with this model on every epoch."""
            stages = load_and_warm(registry / version)[0].predict_proba(night).argmax(axis=1)
            starts = [e["start"] for e in client.get(labels, headers=owner).json()["epochs"]]
            epochs = [{"start": s, "stage": STAGE_LABELS[stage]} for s, stage in zip(starts, stages)]
            assert client.put(labels, headers=owner, json={"scorer": "PSG", "epochs": epochs}).status_code == 200

        promote = lambda conn, store: lifecycle.promote(conn, store, "server-2", "test", "")  # noqa: E731
        scored_like("server-3")
        # What an admin sees before promoting: each version against the tenant's labels.
        judged = {v: client.get(f"/v1/model/evaluation/{v}", headers=owner).json() for v in ("server-2", "server-3")}
        assert judged["server-3"]["labels"]["kappa4"] == 1.0 and judged["server-3"]["labels"]["epochs"] == 480
        assert judged["server-2"]["labels"]["kappa4"] < 1.0
        assert sum(map(sum, judged["server-2"]["labels"]["confusion"])) == 480
        assert client.get("/v1/model/evaluation/server-404", headers=owner).status_code == 404
        with pytest.raises(lifecycle.LifecycleError, match=r"below the active server-3 \(1.0\) on 1 labelled nights"):
            run_lifecycle(url, registry, promote)
        scored_like("server-2")  # now the labels side with server-2, whatever its manifest says
        run_lifecycle(url, registry, promote)
        _wait_for_model(client, "server-2")
        trail = run_lifecycle(url, registry, lambda conn, store: lifecycle.history(conn, "server"))
        assert "kappa4 1.0 vs" in trail[-1]["reason"] and "labelled nights" in trail[-1]["reason"]
        lines = asyncio.run(manage_models(settings, "evaluate", "server-2", "", False))
        assert lines[0].startswith("server-2 on 1 labelled nights, 480 epochs: kappa4=1.000")
        assert len(lines) == 7  # scores, recalls, the matrix's header and four rows

        # server-3 in the shadow: the nightly rescore stores its stages beside the active
        # model's (served: only the active version's); the CLI and admins compare the two.
        with pytest.raises(SystemExit, match="is the active server model"):
            asyncio.run(manage_models(settings, "shadow", "server-2", "", False))
        asyncio.run(manage_models(settings, "shadow", "server-3", "", False))
        nightly = asyncio.run(rescore_recent(settings, hours=1e6))
        assert [line.split()[1:] for line in nightly] == [
            ["server-2", "epochs=480", "new=480"],
            ["server-3", "epochs=480", "new=480"],
        ]
        compared = asyncio.run(manage_models(settings, "evaluate", "server-3", "", False))
        assert compared[-1].startswith("server-3 agrees with server-2 on ") and "of 480 epochs both" in compared[-1]
        beside = client.get("/v1/model/evaluation/server-3", headers=owner).json()["active"]
        assert beside["active_version"] == "server-2" and beside["epochs"] == 480 and 0 < beside["agreement"] < 1
        # A shadow damaged on disk is reported and skipped; the active model still scores.
        (registry / "server-3" / "weights.npz").write_bytes(b"damaged")
        nightly = asyncio.run(rescore_recent(settings, hours=1e6))
        assert nightly[0].startswith("shadow skipped: server-3 does not load")
        assert [line.split()[1] for line in nightly[1:]] == ["server-2"]
        asyncio.run(manage_models(settings, "shadow", "", "", False, stop=True))
        assert [line.split()[1] for line in asyncio.run(rescore_recent(settings, hours=1e6))] == ["server-2"]
