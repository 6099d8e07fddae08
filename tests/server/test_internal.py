"""Drills (issue #9): /internal/faults injects database and model faults into a worker,
/internal/stress measures its inference path; both only when enabled, only for admins."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest

from tests.conftest import PASSWORD, LiveServer, login, make_settings, register_device
from tests.factories import batch_json, plausible_features


@pytest.fixture
def drill_server(database_url, tmp_path):  # type: ignore[no-untyped-def]
    with LiveServer(make_settings(database_url, tmp_path, internal_routes=True)) as server:
        yield server


def test_internal_routes_do_not_exist_unless_enabled(client, tenant):
    assert client.get("/internal/faults", headers=tenant.headers).status_code == 404
    assert client.post("/internal/stress", headers=tenant.headers, json={}).status_code == 404


def test_injected_faults_answer_as_real_ones_would_and_end(drill_server, make_tenant):
    tenant = make_tenant()
    with httpx.Client(base_url=drill_server.url, timeout=30) as client:
        owner = login(client, tenant.email)
        device = register_device(client, owner)
        member_body = {"email": f"m-{time.monotonic_ns()}@example.com", "password": PASSWORD}
        client.post("/v1/users", headers=owner, json=member_body)
        member = login(client, member_body["email"])
        assert (
            client.post(
                "/internal/faults", headers=member, json={"target": "database", "kind": "error", "seconds": 5}
            ).status_code
            == 403
        )
        try:
            injected = client.post(
                "/internal/faults", headers=owner, json={"target": "model", "kind": "error", "seconds": 30}
            )
            assert injected.status_code == 201 and injected.json()[0]["target"] == "model"
            rng = np.random.default_rng(1)
            night = {"epochs": [{"features": plausible_features(rng, i / 120)} for i in range(10)]}
            failing = client.post("/v1/predict", headers=owner, json=night)
            assert (
                failing.status_code == 503 and failing.headers["retry-after"] and "injected" in failing.json()["detail"]
            )
            assert client.delete("/internal/faults", headers=owner).status_code == 204
            assert client.post("/v1/predict", headers=owner, json=night).status_code == 200

            slow = {"target": "database", "kind": "latency", "seconds": 30, "latency_ms": 400}
            assert client.post("/internal/faults", headers=owner, json=slow).status_code == 201
            started = time.monotonic()
            assert (
                client.post("/v1/epochs:ingest", json=batch_json(range(3)), headers=device.headers).status_code == 200
            )
            assert time.monotonic() - started >= 0.4
            client.delete("/internal/faults", headers=owner)

            # A database error for one second: 503 with Retry-After, nothing stored; then served again.
            assert (
                client.post(
                    "/internal/faults", headers=owner, json={"target": "database", "kind": "error", "seconds": 1}
                ).status_code
                == 201
            )
            down = client.post("/v1/epochs:ingest", json=batch_json(range(3, 6)), headers=device.headers)
            assert down.status_code == 503 and down.headers["retry-after"]
            time.sleep(2.2)  # the fault ends; the breaker (if it opened) lets a probe through
            up = client.post("/v1/epochs:ingest", json=batch_json(range(3, 6)), headers=device.headers)
            assert up.status_code == 200 and up.json()["ack_seq"] == 5
        finally:
            client.delete("/internal/faults", headers=owner)


def test_stress_reports_the_inference_path_and_is_bounded(drill_server, make_tenant):
    tenant = make_tenant()
    with httpx.Client(base_url=drill_server.url, timeout=120) as client:
        owner = login(client, tenant.email)
        report = client.post("/internal/stress", headers=owner, json={"requests": 40, "epochs": 960, "concurrency": 4})
        assert report.status_code == 200, report.text
        figures = report.json()
        print(f"stress: {figures}")
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
        assert figures["epochs_per_second"] > 0 and figures["requests"] == 40
        assert client.post("/internal/stress", headers=owner, json={"requests": 10**6}).status_code == 400


def test_db_policies_are_shown_and_changed_on_timescaledb_and_ingest_follows_at_once(
    drill_server, backend, make_tenant
):
    from datetime import UTC, datetime, timedelta

    from noctis_contract.blocks import OFFLINE_HORIZON_DAYS

    tenant = make_tenant()
    with httpx.Client(base_url=drill_server.url, timeout=30) as client:
        owner = login(client, tenant.email)
        shown = client.get("/internal/db/policies", headers=owner)
        if backend != "timescaledb":
            assert shown.status_code == 409 and "TimescaleDB is not loaded" in shown.json()["detail"]
            assert client.put("/internal/db/policies", headers=owner, json={"retention_days": 400}).status_code == 409
            return
        assert shown.status_code == 200, shown.text
        assert {p["table"]: p["chunk_interval_hours"] for p in shown.json()} == {"epochs": 24, "predictions": 24}
        too_short = client.put("/internal/db/policies", headers=owner, json={"retention_days": 60})
        assert too_short.status_code == 422 and f"{OFFLINE_HORIZON_DAYS} days" in too_short.json()["detail"]
        try:
            changed = client.put(
                "/internal/db/policies", headers=owner, json={"retention_days": 200, "compress_after_days": 3}
            )
            assert changed.status_code == 200, changed.text
            assert {(p["retention_days"], p["compress_after_days"]) for p in changed.json()} == {(200, 3)}
            # Ingest follows the policy in force: a night 210 days old is refused for good
            # (the watermark passes it), one 195 days old is stored.
            device = register_device(client, owner)
            old_night = datetime.now(UTC) - timedelta(days=210)
            old = client.post("/v1/epochs:ingest", json=batch_json(range(3), start=old_night), headers=device.headers)
            assert old.json()["accepted"] == 0 and old.json()["ack_seq"] == 2
            assert "200-day retention" in old.json()["rejected"][0]["reason"]
            kept_night = datetime.now(UTC) - timedelta(days=195)
            kept = client.post(
                "/v1/epochs:ingest", json=batch_json(range(3, 6), start=kept_night), headers=device.headers
            )
            assert kept.json()["accepted"] == 3
        finally:
            reset = client.put(
                "/internal/db/policies", headers=owner, json={"retention_days": 0, "compress_after_days": 7}
            )
            assert [p["retention_days"] for p in reset.json()] == [None, None]
