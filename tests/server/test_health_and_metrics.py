import re
import uuid

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


def test_http_metrics_count_and_time_each_route_and_status(client, tenant, device):
    route = "/v1/devices/{device_id}"

    def counts(text):
        found = {}
        for status in ("200", "404"):
            try:
                found[status] = (
                    _metric(text, "noctis_http_requests_total", path=route, status_code=status, method="GET"),
                    _metric(text, "noctis_http_request_duration_seconds_count", path=route, status_code=status),
                )
            except AssertionError:
                found[status] = (0.0, 0.0)
        return found

    before = counts(client.get("/metrics").text)
    client.get(f"/v1/devices/{device.id}", headers=tenant.headers)
    client.get(f"/v1/devices/{device.id}", headers=tenant.headers)
    assert client.get(f"/v1/devices/{uuid.uuid4()}", headers=tenant.headers).status_code == 404
    after = counts(client.get("/metrics").text)
    assert after["200"] == (before["200"][0] + 2, before["200"][1] + 2)
    assert after["404"] == (before["404"][0] + 1, before["404"][1] + 1)


def test_unknown_route_and_method_are_problem_details(client, tenant):
    assert client.get("/v1/nothing-here", headers=tenant.headers).json()["status"] == 404
    response = client.delete("/v1/devices", headers=tenant.headers)
    assert response.status_code == 405 and response.json()["status"] == 405
