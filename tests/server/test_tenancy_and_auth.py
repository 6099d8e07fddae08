import re
import time
import uuid

import jwt
import pytest
from litestar import Controller, Litestar, get

from sync_server.app import create_app
from sync_server.security import LEEWAY_SECONDS, NEEDS, check_needs
from tests.conftest import PASSWORD, bearer, login
from tests.factories import batch_json, stored_seqs


@pytest.fixture
def two_tenants(client, make_tenant, make_device):
    a, b = make_tenant(), make_tenant()
    device_b = make_device(b)
    client.post("/v1/epochs:ingest", json=batch_json(range(10)), headers=device_b.headers)
    recording = client.post(
        "/v1/recordings", headers=b.headers, json={"device_id": device_b.id, "started_at": "2026-11-27T21:00:00Z"}
    ).json()
    return a, b, device_b, recording


def test_tenant_a_gets_404_on_every_tenant_b_resource(client, two_tenants):
    a, b, device_b, recording = two_tenants
    assert client.get(f"/v1/devices/{device_b.id}", headers=b.headers).status_code == 200
    assert client.get(f"/v1/devices/{device_b.id}", headers=a.headers).status_code == 404
    assert client.get(f"/v1/recordings/{recording['id']}", headers=a.headers).status_code == 404
    assert client.post("/v1/predict", headers=a.headers, json={"recording_id": recording["id"]}).status_code == 404
    created = client.post(
        "/v1/recordings", headers=a.headers, json={"device_id": device_b.id, "started_at": "2026-11-27T21:00:00Z"}
    )
    assert created.status_code == 404
    assert client.get("/v1/devices", headers=a.headers).json() == []
    assert client.get("/v1/recordings", headers=a.headers).json() == []
    assert [d["id"] for d in client.get("/v1/devices", headers=b.headers).json()] == [device_b.id]


@pytest.fixture
def member(client, tenant) -> dict[str, str]:
    email = f"member-{uuid.uuid4().hex[:8]}@example.com"
    created = client.post(
        "/v1/users", headers=tenant.headers, json={"email": email, "password": PASSWORD, "role": "member"}
    )
    assert created.status_code == 201, created.text
    return login(client, email)


def routes_needing(*needs: str) -> list[tuple[str, str]]:
    """(method, a path it answers) of every route whose `needs` is one of `needs`."""
    found = []
    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", ()):
            if handler.opt.get("needs") in needs:
                path = re.sub(r"\{\w+:uuid\}", str(uuid.uuid4()), route.path)
                path = re.sub(r"\{\w+:str\}", "edge-1", path)
                found += [(method, path) for method in sorted(handler.http_methods - {"OPTIONS"})]
    return found


def test_every_authenticated_route_says_who_may_call_it():
    for route in create_app().routes:
        for handler in getattr(route, "route_handlers", ()):
            authenticated = not handler.opt.get("exclude_from_auth") and handler.http_methods != {"OPTIONS"}
            if route.path.startswith("/v1") and authenticated:
                assert handler.opt.get("needs") in NEEDS, route.path


def test_a_misspelt_needs_is_refused_when_the_app_is_built():
    class Misspelt(Controller):
        path = "/v1/misspelt"
        opt = {"needs": "users"}

        @get("/")
        async def misspelt(self) -> None: ...

    with pytest.raises(ValueError, match="needs must be one of"):
        check_needs(Litestar([Misspelt]))


def test_device_token_cannot_use_user_routes(client, device):
    user_routes = routes_needing("user", "admin", "owner")
    assert ("POST", "/v1/predict") in user_routes and len(user_routes) > 25
    for method, path in user_routes:
        response = client.request(method, path, headers=device.headers, json={})
        assert response.status_code == 403, (method, path, response.text)


def test_members_are_refused_on_every_admin_and_owner_route(client, tenant, member):
    for method, path in routes_needing("admin", "owner"):
        response = client.request(method, path, headers=member, json={})
        assert response.status_code == 403, (method, path, response.text)


def test_user_tokens_are_refused_on_every_device_route(client, tenant):
    device_routes = routes_needing("device")
    assert ("POST", "/v1/epochs:ingest") in device_routes
    for method, path in device_routes:
        response = client.request(method, path, headers=tenant.headers, json={})
        assert response.status_code == 403, (method, path, response.text)


def test_user_token_cannot_ingest(client, tenant, device, database_url):
    response = client.post("/v1/epochs:ingest", json=batch_json(range(3)), headers=tenant.headers)
    assert response.status_code == 403
    assert stored_seqs(database_url, device.id) == []


def test_a_device_token_ingests_only_for_its_own_device(client, make_tenant, make_device, database_url):
    tenant = make_tenant()
    first, second = make_device(tenant, "one"), make_device(tenant, "two")
    client.post("/v1/epochs:ingest", json=batch_json(range(5)), headers=first.headers)
    assert stored_seqs(database_url, first.id) == list(range(5))
    assert stored_seqs(database_url, second.id) == []
    # The body cannot name another device: the identity is the token's.
    sneaky = batch_json(range(5, 8), device_id=second.id)
    assert client.post("/v1/epochs:ingest", json=sneaky, headers=first.headers).status_code == 422
    assert stored_seqs(database_url, second.id) == []


def test_missing_forged_and_expired_tokens_are_401(client, live_server, device):
    assert client.get("/v1/devices").status_code == 401
    settings = live_server.settings
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": device.id,
        "iat": now,
        "exp": now + 60,
        "typ": "device",
        "tid": device.id,
        "role": "device",
    }
    forged = jwt.encode(claims, "not-the-secret-but-long-enough-for-hs256!", algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    expired = jwt.encode({**claims, "exp": now - 3600, "iat": now - 7200}, settings.jwt_secret, algorithm="HS256")
    no_aud = jwt.encode({k: v for k, v in claims.items() if k != "aud"}, settings.jwt_secret, algorithm="HS256")
    for token in (forged, unsigned, expired, no_aud, "garbage"):
        response = client.post("/v1/epochs:ingest", json=batch_json([0]), headers=bearer(token))
        assert response.status_code == 401, token
        assert response.json()["title"] == "Not authenticated"


def test_a_token_must_come_alone_and_as_a_bearer_token(client, tenant):
    token = tenant.headers["Authorization"]
    assert client.get("/v1/devices", headers=[("Authorization", token)]).status_code == 200
    twice = client.get("/v1/devices", headers=[("Authorization", token), ("Authorization", token)])
    assert twice.status_code == 401 and "not several" in twice.json()["detail"]
    basic = client.get("/v1/devices", headers={"Authorization": "Basic " + token.split()[1]})
    assert basic.status_code == 401 and "missing bearer token" in basic.json()["detail"]
    lower = client.get("/v1/devices", headers={"authorization": "bearer " + token.split()[1]})
    assert lower.status_code == 200


def test_a_token_that_was_good_is_refused_once_it_expires(client, live_server, device):
    # Each worker keeps a token's verdict after checking it once: the expiry must still
    # be checked on every use.
    settings = live_server.settings
    claims = jwt.decode(device.headers["Authorization"].split()[1], options={"verify_signature": False})
    ends = time.time() + 2  # leeway included
    claims["exp"] = int(ends) - LEEWAY_SECONDS
    headers = bearer(jwt.encode(claims, settings.jwt_secret, algorithm="HS256"))
    assert client.post("/v1/epochs:ingest", json=batch_json([0]), headers=headers).status_code == 200
    time.sleep(max(0.0, int(ends) + 1.1 - time.time()))
    refused = client.post("/v1/epochs:ingest", json=batch_json([1]), headers=headers)
    assert refused.status_code == 401 and refused.json()["detail"] == "token expired", refused.text


def test_wrong_password_and_wrong_device_secret_are_401(client, tenant, device):
    assert client.post("/v1/auth/token", json={"email": tenant.email, "password": "nope"}).status_code == 401
    assert client.post("/v1/auth/token", json={"email": "nobody@example.com", "password": PASSWORD}).status_code == 401
    assert client.post("/v1/auth/device-token", json={"device_id": device.id, "secret": "x"}).status_code == 401


def test_members_can_read_but_not_register_devices(client, tenant, device):
    created = client.post(
        "/v1/users",
        headers=tenant.headers,
        json={"email": f"member-{device.id[:8]}@example.com", "password": PASSWORD, "role": "member"},
    )
    assert created.status_code == 201, created.text
    token = client.post("/v1/auth/token", json={"email": created.json()["email"], "password": PASSWORD}).json()
    member = bearer(token["access_token"])
    assert [d["id"] for d in client.get("/v1/devices", headers=member).json()] == [device.id]
    assert client.post("/v1/devices", headers=member, json={"name": "x"}).status_code == 403
    again = client.post(
        "/v1/users", headers=tenant.headers, json={"email": created.json()["email"], "password": PASSWORD}
    )
    assert again.status_code == 409
