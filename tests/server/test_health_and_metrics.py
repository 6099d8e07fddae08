import re

from tests.factories import batch_json, bundled_version


def _metric(text, name, **labels):
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{wanted}}} not found")


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "server_model": bundled_version("server")}


def test_metrics_count_ingest_and_label_by_route_template(client, tenant, device):
    before = client.get("/metrics").text
    accepted_before = _metric(before, "noctis_epochs_ingested_total", outcome="accepted")
    client.post("/v1/epochs:ingest", json=batch_json(range(25)), headers=device.headers)
    client.get(f"/v1/devices/{device.id}", headers=tenant.headers)
    after = client.get("/metrics").text
    assert _metric(after, "noctis_epochs_ingested_total", outcome="accepted") == accepted_before + 25
    # One series per route template, never one per device id.
    assert 'path="/v1/devices/{device_id}"' in after
    assert device.id not in after
    assert re.search(r'noctis_http_requests_total\{[^}]*path="/v1/epochs:ingest"', after)


def test_unknown_route_and_method_are_problem_details(client, tenant):
    assert client.get("/v1/nothing-here", headers=tenant.headers).json()["status"] == 404
    response = client.delete("/v1/devices", headers=tenant.headers)
    assert response.status_code == 405 and response.json()["status"] == 405
