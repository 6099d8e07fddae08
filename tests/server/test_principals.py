"""Tokens are bound to live principals (issue #10): a token is only as good as the user
or device behind it is now: existing, in the token's tenant, enabled, and with no
credential change since the token was issued."""

from __future__ import annotations

import uuid

import jwt

from sync_server.security import Principal, issue_token
from tests.conftest import PASSWORD, bearer, login
from tests.factories import batch_json, stored_seqs


def signed(live_server, kind: str, sub: str, tenant_id: str, role: str = "owner", version: int = 0) -> dict[str, str]:
    principal = Principal(kind, uuid.UUID(sub), uuid.UUID(tenant_id), role, version)  # type: ignore[arg-type]
    return bearer(issue_token(live_server.settings, principal)[0])


def add_user(client, tenant, role: str = "member") -> tuple[str, dict[str, str]]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    body = {"email": email, "password": PASSWORD, "role": role}
    created = client.post("/v1/users", headers=tenant.headers, json=body)
    assert created.status_code == 201, created.text
    return created.json()["id"], login(client, email)


def test_signed_tokens_for_principals_that_do_not_exist_are_refused(client, live_server, tenant, device):
    ghost_user = signed(live_server, "user", str(uuid.uuid4()), tenant.id)
    assert client.get("/v1/devices", headers=ghost_user).status_code == 401
    assert client.post("/v1/devices", json={"name": "x"}, headers=ghost_user).status_code == 401
    owner_id = jwt.decode(tenant.headers["Authorization"][7:], options={"verify_signature": False})["sub"]
    no_tenant = signed(live_server, "user", owner_id, str(uuid.uuid4()))
    assert client.get("/v1/devices", headers=no_tenant).status_code == 401
    ghost_device = signed(live_server, "device", str(uuid.uuid4()), tenant.id, "device")
    assert client.get("/v1/ota/manifest", headers=ghost_device).status_code == 401
    # A user token that claims to be the device (same id, other kind) is no device token.
    as_device = signed(live_server, "device", owner_id, tenant.id, "device")
    assert client.get("/v1/ota/manifest", headers=as_device).status_code == 401


def test_a_disabled_user_is_refused_at_once_and_old_tokens_stay_dead(client, tenant):
    user_id, member = add_user(client, tenant)
    assert client.get("/v1/devices", headers=member).status_code == 200
    assert client.post(f"/v1/users/{user_id}/disable", headers=tenant.headers).status_code == 204
    assert client.get("/v1/devices", headers=member).status_code == 401
    assert client.post(f"/v1/users/{user_id}/enable", headers=tenant.headers).status_code == 204
    assert client.get("/v1/devices", headers=member).status_code == 401  # enabling revives no old token


def test_a_deleted_user_is_refused(client, tenant):
    user_id, member = add_user(client, tenant)
    assert client.delete(f"/v1/users/{user_id}", headers=tenant.headers).status_code == 204
    assert client.get("/v1/devices", headers=member).status_code == 401


def test_who_may_disable_whom(client, tenant):
    owner_id = jwt.decode(tenant.headers["Authorization"][7:], options={"verify_signature": False})["sub"]
    admin_id, admin = add_user(client, tenant, "admin")
    other_admin_id, _ = add_user(client, tenant, "admin")
    member_id, member = add_user(client, tenant, "member")
    assert client.post(f"/v1/users/{admin_id}/disable", headers=member).status_code == 403
    assert client.post(f"/v1/users/{owner_id}/disable", headers=admin).status_code == 403
    assert client.post(f"/v1/users/{other_admin_id}/disable", headers=admin).status_code == 403
    assert client.post(f"/v1/users/{admin_id}/disable", headers=admin).status_code == 403  # not yourself
    assert client.post(f"/v1/users/{member_id}/disable", headers=admin).status_code == 204
    assert client.post(f"/v1/users/{uuid.uuid4()}/disable", headers=admin).status_code == 404


def test_users_of_another_tenant_are_not_found(client, make_tenant):
    first, second = make_tenant(), make_tenant()
    user_id, _ = add_user(client, first)
    assert client.post(f"/v1/users/{user_id}/disable", headers=second.headers).status_code == 404
    assert client.delete(f"/v1/users/{user_id}", headers=second.headers).status_code == 404


def test_a_disabled_device_is_refused_and_keeps_its_data(client, tenant, make_device, database_url):
    device = make_device(tenant)
    assert client.post("/v1/epochs:ingest", json=batch_json(range(5)), headers=device.headers).status_code == 200
    disabled = client.post(f"/v1/devices/{device.id}/disable", headers=tenant.headers)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    assert client.post("/v1/epochs:ingest", json=batch_json(range(5, 9)), headers=device.headers).status_code == 401
    exchange = {"device_id": device.id, "secret": device.secret}
    assert client.post("/v1/auth/device-token", json=exchange).status_code == 401
    assert stored_seqs(database_url, device.id) == list(range(5))
    assert client.post(f"/v1/devices/{device.id}/enable", headers=tenant.headers).json()["disabled"] is False
    token = client.post("/v1/auth/device-token", json=exchange)
    assert token.status_code == 200
    again = client.post("/v1/epochs:ingest", json=batch_json(range(5, 9)), headers=bearer(token.json()["access_token"]))
    assert again.status_code == 200 and again.json()["ack_seq"] == 8


def test_a_rotated_secret_ends_the_old_secret_and_its_tokens(client, tenant, make_device):
    device = make_device(tenant)
    rotated = client.post(f"/v1/devices/{device.id}/secret", headers=tenant.headers)
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret != device.secret
    assert client.get("/v1/ota/manifest", headers=device.headers).status_code == 401
    old = {"device_id": device.id, "secret": device.secret}
    assert client.post("/v1/auth/device-token", json=old).status_code == 401
    new = client.post("/v1/auth/device-token", json={"device_id": device.id, "secret": new_secret})
    assert new.status_code == 200
    assert client.get("/v1/ota/manifest", headers=bearer(new.json()["access_token"])).status_code != 401


def test_deleting_a_device_deletes_its_data_and_only_admins_may(client, tenant, make_device, database_url):
    device = make_device(tenant)
    assert client.post("/v1/epochs:ingest", json=batch_json(range(3)), headers=device.headers).status_code == 200
    _, member = add_user(client, tenant)
    assert client.delete(f"/v1/devices/{device.id}", headers=member).status_code == 403
    assert client.delete(f"/v1/devices/{device.id}", headers=tenant.headers).status_code == 204
    assert client.get(f"/v1/devices/{device.id}", headers=tenant.headers).status_code == 404
    assert client.post("/v1/epochs:ingest", json=batch_json(range(3, 5)), headers=device.headers).status_code == 401
    assert stored_seqs(database_url, device.id) == []


def test_creating_a_user_says_nothing_about_other_tenants(client, make_tenant):
    first, second = make_tenant(), make_tenant()
    # The first tenant's owner's email, created in the second tenant: no 409, no hint.
    created = client.post(
        "/v1/users", headers=second.headers, json={"email": first.email, "password": "other-" + PASSWORD}
    )
    assert created.status_code == 201, created.text
    assert created.json()["tenant_id"] == second.id
    # Each password opens its own account.
    mine = client.post("/v1/auth/token", json={"email": first.email, "password": PASSWORD})
    theirs = client.post("/v1/auth/token", json={"email": first.email, "password": "other-" + PASSWORD})
    claims = [jwt.decode(r.json()["access_token"], options={"verify_signature": False}) for r in (mine, theirs)]
    assert [c["tid"] for c in claims] == [first.id, second.id]
    # Within one tenant an email is still unique.
    again = client.post("/v1/users", headers=second.headers, json={"email": first.email, "password": PASSWORD})
    assert again.status_code == 409


def test_one_email_and_password_in_two_tenants_needs_the_tenant_named(client, make_tenant):
    first, second = make_tenant(), make_tenant()
    assert (
        client.post("/v1/users", headers=second.headers, json={"email": first.email, "password": PASSWORD}).status_code
        == 201
    )
    ambiguous = client.post("/v1/auth/token", json={"email": first.email, "password": PASSWORD})
    assert ambiguous.status_code == 422 and "tenant_id" in ambiguous.json()["detail"]
    named = client.post("/v1/auth/token", json={"email": first.email, "password": PASSWORD, "tenant_id": second.id})
    assert jwt.decode(named.json()["access_token"], options={"verify_signature": False})["tid"] == second.id
