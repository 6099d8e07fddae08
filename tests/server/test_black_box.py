"""The black-box suite (issue #10), driven by the server's own OpenAPI schema so that a
new route cannot slip through: every route is classified by who may call it; every
principal is tried on every route; every route that takes an id is called with the
other tenant's ids; and the JWT attack set is thrown at an authenticated route."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import PASSWORD, bearer, login
from tests.factories import batch_json

# Who may call each route. A route missing here fails the suite: classify it first.
ANYONE, DEVICE, MEMBER, ADMIN, OWNER = "anyone", "device", "member", "admin", "owner"
WHO_MAY = {
    ("GET", "/healthz"): ANYONE,
    ("GET", "/metrics"): ANYONE,
    ("GET", "/readyz"): ANYONE,
    ("POST", "/v1/auth/device-token"): ANYONE,
    ("POST", "/v1/auth/token"): ANYONE,
    ("POST", "/v1/epochs:ingest"): DEVICE,
    ("GET", "/v1/ota/manifest"): DEVICE,
    ("GET", "/v1/ota/models/{version}"): DEVICE,
    ("GET", "/v1/devices"): MEMBER,
    ("GET", "/v1/devices/{device_id}"): MEMBER,
    ("GET", "/v1/devices/{device_id}/epochs.csv"): MEMBER,
    ("GET", "/v1/model/drift"): MEMBER,
    ("GET", "/v1/ota/public-key"): MEMBER,
    ("POST", "/v1/predict"): MEMBER,
    ("POST", "/v1/predict/recordings/{recording_id}"): MEMBER,
    ("GET", "/v1/predict/recordings/{recording_id}/hypnogram.svg"): MEMBER,
    ("GET", "/v1/predict/recordings/{recording_id}/report"): MEMBER,
    ("GET", "/v1/predict/recordings/{recording_id}/stages.edf"): MEMBER,
    ("GET", "/v1/recordings"): MEMBER,
    ("POST", "/v1/recordings"): MEMBER,
    ("GET", "/v1/recordings/{recording_id}"): MEMBER,
    ("PATCH", "/v1/recordings/{recording_id}"): MEMBER,
    ("DELETE", "/v1/recordings/{recording_id}"): MEMBER,
    ("GET", "/v1/recordings/{recording_id}/labels"): MEMBER,
    ("PUT", "/v1/recordings/{recording_id}/labels"): MEMBER,
    ("POST", "/v1/devices"): ADMIN,
    ("GET", "/v1/audit"): ADMIN,
    ("GET", "/v1/model/evaluation/{version}"): ADMIN,
    ("DELETE", "/v1/devices/{device_id}"): ADMIN,
    ("POST", "/v1/devices/{device_id}/disable"): ADMIN,
    ("POST", "/v1/devices/{device_id}/enable"): ADMIN,
    ("POST", "/v1/devices/{device_id}/secret"): ADMIN,
    ("POST", "/v1/users"): ADMIN,
    ("DELETE", "/v1/users/{user_id}"): ADMIN,
    ("DELETE", "/v1/tenant"): OWNER,
    ("POST", "/v1/users/{user_id}/disable"): ADMIN,
    ("POST", "/v1/users/{user_id}/enable"): ADMIN,
}
ALLOWED = {
    ANYONE: {"none", "device", "member", "admin", "owner"},
    DEVICE: {"device"},
    MEMBER: {"member", "admin", "owner"},
    ADMIN: {"admin", "owner"},
    OWNER: {"owner"},
}


def operations(client) -> list[tuple[str, str]]:
    spec = client.get("/schema/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, entries in spec["paths"].items()
        for method in entries
        if method in ("get", "post", "put", "patch", "delete")
    )


class World:
    """Two tenants, each with an owner, an admin, a member, a device, a recording."""

    def __init__(self, client, make_tenant, make_device) -> None:  # type: ignore[no-untyped-def]
        self.tenants = []
        for _ in range(2):
            tenant = make_tenant()
            ids: dict[str, str] = {}
            tokens = {"owner": tenant.headers, "none": {}}
            for role in ("admin", "member"):
                email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
                body = {"email": email, "password": PASSWORD, "role": role}
                ids[f"{role}_user"] = client.post("/v1/users", headers=tenant.headers, json=body).json()["id"]
                ids[f"{role}_email"] = email
                tokens[role] = login(client, email)
            device = make_device(tenant)
            tokens["device"] = device.headers
            client.post("/v1/epochs:ingest", json=batch_json(range(20)), headers=device.headers)
            recording = {"device_id": device.id, "started_at": "2026-11-27T21:00:00Z"}
            ids["recording_id"] = client.post("/v1/recordings", headers=tenant.headers, json=recording).json()["id"]
            ids["device_id"] = device.id
            ids["user_id"] = ids["member_user"]
            self.tenants.append((tokens, ids))

    def path(self, template: str, tenant: int) -> str:
        _, ids = self.tenants[tenant]
        return template.format(device_id=ids["device_id"], recording_id=ids["recording_id"],
                               user_id=ids["user_id"], version="edge-1")  # fmt: skip

    def body(self, method: str, path: str, tenant: int) -> dict[str, object] | None:
        _, ids = self.tenants[tenant]
        if method not in ("POST", "PUT", "PATCH"):
            return None
        return {
            "/v1/devices": {"name": "probe"},
            "/v1/recordings": {"device_id": ids["device_id"], "started_at": "2026-11-27T21:00:00Z"},
            "/v1/predict": {"recording_id": ids["recording_id"]},
            "/v1/recordings/{recording_id}": {"label": "probe"},
            "/v1/users": {"email": f"p-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD},
            "/v1/epochs:ingest": batch_json(range(20, 21)),
            "/v1/recordings/{recording_id}/labels": {
                "scorer": "probe",
                "epochs": [{"start": batch_json([0])["epochs"][0]["start"], "stage": "W"}],
            },
        }.get(path, {})


@pytest.fixture
def world(client, make_tenant, make_device) -> World:  # type: ignore[no-untyped-def]
    return World(client, make_tenant, make_device)


def test_every_route_is_classified(client):
    assert set(operations(client)) == set(WHO_MAY)


def test_every_principal_on_every_route(client, world):
    tokens, _ = world.tenants[0]
    # Destructive routes last, so that they do not take away what the others use.
    order = sorted(WHO_MAY, key=lambda op: (op[0] == "DELETE", "disable" in op[1] or "secret" in op[1], op))
    for principal in ("none", "device", "member", "admin", "owner"):
        for method, template in order:
            if method == "DELETE" or "disable" in template or "secret" in template:
                if principal in ALLOWED[WHO_MAY[(method, template)]]:
                    continue  # checked below on throwaway targets
            response = client.request(
                method, world.path(template, 0), headers=tokens[principal], json=world.body(method, template, 0)
            )
            allowed = principal in ALLOWED[WHO_MAY[(method, template)]]
            refused = response.status_code in (401, 403)
            assert refused != allowed, (principal, method, template, response.status_code, response.text[:200])
            if principal == "none" and refused:
                assert response.status_code == 401
    # The destructive routes, for those who may, on throwaway targets of their own; with
    # fresh tokens (enabling the member above ended its sessions, as it should).
    _, ids = world.tenants[0]
    tokens = {**tokens, **{role: login(client, ids[f"{role}_email"]) for role in ("admin", "member")}}
    for method, template in WHO_MAY:
        if not (method == "DELETE" or "disable" in template or "secret" in template):
            continue
        if template == "/v1/tenant":
            continue  # deletes the whole world: tests/server/test_tenant_deletion.py, on a tenant of its own
        for principal in sorted(ALLOWED[WHO_MAY[(method, template)]]):
            device = client.post("/v1/devices", headers=tokens["owner"], json={"name": "throwaway"}).json()
            user = client.post("/v1/users", headers=tokens["owner"], json=world.body("POST", "/v1/users", 0)).json()
            night = {"device_id": device["device"]["id"], "started_at": "2026-11-27T22:00:00Z"}
            recording = client.post("/v1/recordings", headers=tokens["owner"], json=night).json()
            path = template.format(device_id=device["device"]["id"], user_id=user["id"], recording_id=recording["id"])
            response = client.request(method, path, headers=tokens[principal])
            assert response.is_success, (principal, method, template, response.status_code, response.text[:200])


def test_every_route_with_an_id_answers_404_for_the_other_tenants(client, world):
    tokens_a, _ = world.tenants[0]
    for method, template in WHO_MAY:
        if "{" not in template or "{version}" in template:
            continue
        principal = "owner" if WHO_MAY[(method, template)] in (MEMBER, ADMIN) else "device"
        response = client.request(
            method, world.path(template, 1), headers=tokens_a[principal], json=world.body(method, template, 0)
        )
        assert response.status_code == 404, (method, template, response.status_code, response.text[:200])
    # And lists and bodies that name tenant B's ids show and touch nothing of it.
    _, ids_b = world.tenants[1]
    for path in ("/v1/devices", "/v1/recordings", "/v1/model/drift"):
        listed = client.get(path, headers=tokens_a["owner"]).text
        assert ids_b["device_id"] not in listed and ids_b["recording_id"] not in listed
    foreign = {"device_id": ids_b["device_id"], "started_at": "2026-11-27T21:00:00Z"}
    assert client.post("/v1/recordings", headers=tokens_a["owner"], json=foreign).status_code == 404
    assert (
        client.post("/v1/predict", headers=tokens_a["owner"], json={"recording_id": ids_b["recording_id"]}).status_code
        == 404
    )


def _claims(token_headers: dict[str, str]) -> dict[str, object]:
    return jwt.decode(token_headers["Authorization"][7:], options={"verify_signature": False})


def test_the_jwt_attack_set(client, live_server, world):
    tokens, _ = world.tenants[0]
    _, ids_b = world.tenants[1]
    secret = live_server.settings.jwt_secret
    good = _claims(tokens["owner"])
    now = int(time.time())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header, payload, _ = jwt.encode(good, secret, algorithm="HS256").split(".")

    def with_alg(alg: str) -> str:
        head = jwt.utils.base64url_encode(json.dumps({"alg": alg, "typ": "JWT"}).encode()).decode()
        return f"{head}.{payload}."

    def hs256_keyed_with(key: bytes) -> str:
        # PyJWT refuses to do this (the classic RS256/HS256 confusion), so sign by hand.
        signing_input = f"{header}.{payload}".encode()
        signature = hmac.new(key, signing_input, hashlib.sha256).digest()
        return f"{header}.{payload}.{jwt.utils.base64url_encode(signature).decode()}"

    unsigned = [
        jwt.encode(good, None, algorithm="none"),
        *(with_alg(alg) for alg in ("none", "None", "NONE", "nOnE")),
        f"{header}.{payload}.",  # the signature stripped
    ]
    attacks = {
        **{f"unsigned {i}": t for i, t in enumerate(unsigned)},
        "RS256 with our own key": jwt.encode(good, rsa_key, algorithm="RS256"),
        "HS256 keyed with a public key": hs256_keyed_with(public_pem),
        "HS512 with the right secret": jwt.encode(good, secret, algorithm="HS512"),
        "expired": jwt.encode({**good, "exp": now - 120, "iat": now - 3600}, secret, algorithm="HS256"),
        "not yet valid": jwt.encode({**good, "nbf": now + 3600}, secret, algorithm="HS256"),
        "issued in the future": jwt.encode({**good, "iat": now + 3600}, secret, algorithm="HS256"),
        "wrong audience": jwt.encode({**good, "aud": "another-api"}, secret, algorithm="HS256"),
        "wrong issuer": jwt.encode({**good, "iss": "someone-else"}, secret, algorithm="HS256"),
        "another tenant": jwt.encode({**good, "tid": str(uuid.uuid4())}, secret, algorithm="HS256"),
        "a device claiming a user": jwt.encode({**good, "typ": "device"}, secret, algorithm="HS256"),
        "a user id of tenant B": jwt.encode({**good, "sub": ids_b["member_user"]}, secret, algorithm="HS256"),
        "an older token version": jwt.encode({**good, "ver": -1}, secret, algorithm="HS256"),
        "a string version": jwt.encode({**good, "ver": "0"}, secret, algorithm="HS256"),
        "a made-up role": jwt.encode(
            {**good, "role": "superuser", "sub": str(uuid.uuid4())}, secret, algorithm="HS256"
        ),
        **{
            f"without {claim}": jwt.encode({k: v for k, v in good.items() if k != claim}, secret, algorithm="HS256")
            for claim in ("sub", "exp", "iat", "iss", "aud", "tid", "typ", "ver")
        },
        "garbage": "not.a.token",
        "empty": "-",
    }
    assert client.get("/v1/devices", headers=tokens["owner"]).status_code == 200
    for name, token in attacks.items():
        response = client.get("/v1/devices", headers=bearer(token))
        assert response.status_code == 401, (name, response.status_code, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
