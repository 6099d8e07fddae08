"""What an attacker tried and what broke before (issue #10): each answer is now a 4xx
problem-details body or a success that stores what it should, never a 500."""

from __future__ import annotations

import time

import jwt
import numpy as np
import pytest

from noctis_contract.blocks import Block, encode_block
from tests.conftest import bearer
from tests.factories import NIGHT_START, batch_json, stored_column

NUL_AND_CONTROL = ["a\x00b", "tab\there", "bell\x07", "del\x7f"]
SCHEMA_PATHS = [
    "/v1/devices",
    "/v1/recordings",
    "/v1/predict",
    "/v1/model/drift",
    "/v1/users",
    "/v1/epochs:ingest",
    "/v1/ota/manifest",
    "/v1/auth/token",
]


@pytest.mark.parametrize("path", SCHEMA_PATHS)
def test_options_and_preflight_never_fail(client, path):
    for headers in ({}, {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}):
        response = client.options(path, headers=headers)
        assert response.status_code in (200, 204), (path, response.status_code, response.text)
        assert "access-control-allow-origin" not in response.headers  # CORS is off by default


@pytest.mark.parametrize("text", NUL_AND_CONTROL)
def test_control_characters_are_refused_in_every_stored_string(client, tenant, device, text):
    answers = [
        client.post("/v1/devices", json={"name": text}, headers=tenant.headers),
        client.post(
            "/v1/recordings",
            json={"device_id": device.id, "started_at": "2026-11-28T22:00:00Z", "label": text},
            headers=tenant.headers,
        ),
        client.post("/v1/users", json={"email": f"x{text}@example.com", "password": "p" * 16}, headers=tenant.headers),
        client.post("/v1/auth/token", json={"email": f"x{text}@example.com", "password": "p" * 16}),
    ]
    for response in answers:
        assert response.status_code in (400, 422), (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("version", [2**31, 2**32 - 1, 2**32, 2**63, 10**30])
def test_edge_model_versions_fit_or_are_refused(client, device, database_url, version):
    response = client.post(
        "/v1/epochs:ingest", json=batch_json(range(2), edge_model_version=version), headers=device.headers
    )
    if version < 2**32:  # a device's uint32: stored as it is
        assert response.status_code == 200, response.text
        assert version in stored_column(database_url, "epochs", "edge_model_version", device.id)
    else:
        assert response.status_code in (400, 422), response.text


def test_a_block_from_a_device_with_model_version_0xffffffff_is_stored(client, device, database_url):
    codes = np.full((3, 15), 40, dtype=np.uint8)
    body = encode_block(Block(0, int(NIGHT_START.timestamp()), 0xFFFFFFFF, codes, None))
    response = client.post(
        "/v1/epochs:ingest", content=body, headers={**device.headers, "content-type": "application/octet-stream"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["ack_seq"] == 2
    assert stored_column(database_url, "epochs", "edge_model_version", device.id) == [0xFFFFFFFF] * 3


@pytest.mark.parametrize("offset", [2**31, 2**63, 10**30])
def test_huge_offsets_are_refused(client, tenant, offset):
    for path in ("/v1/devices", "/v1/recordings"):
        response = client.get(path, params={"offset": offset}, headers=tenant.headers)
        assert response.status_code == 400, response.text


def test_a_recording_needs_a_real_start(client, tenant, device):
    for started_at in (0, "1970-01-01T00:00:00Z"):
        response = client.post(
            "/v1/recordings", json={"device_id": device.id, "started_at": started_at}, headers=tenant.headers
        )
        assert response.status_code in (400, 422), response.text


def test_two_authorization_headers_are_refused(client, tenant):
    headers = [("Authorization", tenant.headers["Authorization"]), ("Authorization", "Bearer garbage")]
    response = client.get("/v1/devices", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_401_says_nothing_of_which_check_failed(client, live_server, tenant):
    claims = jwt.decode(tenant.headers["Authorization"][7:], options={"verify_signature": False})
    wrong_audience = jwt.encode({**claims, "aud": "elsewhere"}, live_server.settings.jwt_secret, algorithm="HS256")
    wrong_key = jwt.encode({**claims, "exp": int(time.time()) + 60}, "another-key-" + "y" * 32, algorithm="HS256")
    details = set()
    for token in (wrong_audience, wrong_key, "not.a.token"):
        response = client.get("/v1/devices", headers=bearer(token))
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        details.add(response.json()["detail"])
    assert details == {"invalid token"}


def test_every_answer_carries_security_headers(client, tenant):
    for response in (
        client.get("/v1/devices", headers=tenant.headers),
        client.get("/v1/devices"),  # 401
        client.get("/v1/nowhere", headers=tenant.headers),  # 404
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_405_names_the_allowed_methods(client, tenant):
    response = client.delete("/v1/recordings", headers=tenant.headers)
    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
