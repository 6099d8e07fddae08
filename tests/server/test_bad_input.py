"""Whatever a client sends, the answer is a 4xx problem-details body, never a 500."""

import pytest

BODIES = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b'"text"',
    b"12",
    b"{" * 200,
    b'{"epochs": [{"seq": -1, "start": "yesterday", "features": "x"}]}',
    b'{"epochs": [{"seq": 1e400, "start": "2026-11-27T22:00:00Z", "features": []}]}',
    b'{"epochs": [{"seq": 1, "start": "2026-11-27T22:00:00", "features": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}',
    b'{"email": 5, "password": null, "device_id": "not-a-uuid", "name": ""}',
    b'{"recording_id": "00000000-0000-0000-0000-000000000000", "epochs": [{"features": [null]}]}',
    b'{"device_id": "00000000-0000-4000-8000-000000000000", "started_at": "2026-13-45T99:99:99Z"}',
    '{"name": "\u0000\ud800"}'.encode("utf-8", "surrogatepass"),
    b"\xff\xfe\x00binary",
]
ROUTES = [
    "/v1/auth/token",
    "/v1/auth/device-token",
    "/v1/users",
    "/v1/devices",
    "/v1/recordings",
    "/v1/predict",
    "/v1/epochs:ingest",
]


@pytest.mark.parametrize("route", ROUTES)
def test_malformed_bodies_get_4xx_problem_details(client, tenant, device, route):
    headers = device.headers if route == "/v1/epochs:ingest" else tenant.headers
    for body in BODIES:
        for content_type in ("application/json", "application/octet-stream"):
            response = client.post(route, content=body, headers={**headers, "content-type": content_type})
            if route == "/v1/epochs:ingest" and response.status_code == 200:
                # A readable batch whose epochs are all bad: each is rejected with its reason.
                ack = response.json()
                assert ack["accepted"] == 0 and ack["rejected"] and all(r["reason"] for r in ack["rejected"])
                continue
            assert 400 <= response.status_code < 500, (route, body[:40], content_type, response.text)
            assert response.headers["content-type"].startswith("application/problem+json"), (route, body[:40])
            assert response.json()["status"] == response.status_code


@pytest.mark.parametrize(
    "path",
    [
        "/v1/devices/not-a-uuid",
        "/v1/recordings/12",
        "/v1/devices?limit=-1",
        "/v1/devices?limit=abc",
        "/v1/recordings?offset=-5",
        "/v1/devices?limit=100000",
    ],
)
def test_malformed_paths_and_queries_get_4xx(client, tenant, path):
    response = client.get(path, headers=tenant.headers)
    assert 400 <= response.status_code < 500, (path, response.text)
    assert response.json()["status"] == response.status_code
