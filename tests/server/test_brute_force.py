"""Brute force (issue #10): the 11th wrong password within a minute is refused with 429,
even when it is the right one; device secrets likewise; the limit is shared by all
workers because it lives in the database."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import msgspec
import pytest

from sync_server.db import auth_failures, engine_for_job
from sync_server.settings import Settings
from tests.conftest import PASSWORD, LiveServer, login, make_settings, register_device


@pytest.fixture
def server(database_url, tmp_path):  # type: ignore[no-untyped-def]
    # Other tests' wrong passwords came from 127.0.0.1 too: start from a clean count.
    async def forget_failures() -> None:
        async with engine_for_job(database_url) as engine, engine.begin() as conn:
            await conn.execute(auth_failures.delete())

    asyncio.run(forget_failures())
    default = next(f.default for f in msgspec.structs.fields(Settings) if f.name == "auth_failures_per_source")
    with LiveServer(make_settings(database_url, tmp_path, auth_failures_per_source=default)) as live:
        yield live


def test_the_eleventh_attempt_after_ten_wrong_passwords_is_refused(server, make_tenant):
    tenant = make_tenant()
    with httpx.Client(base_url=server.url) as client:
        for _ in range(10):
            wrong = client.post("/v1/auth/token", json={"email": tenant.email, "password": "wrong-password-123"})
            assert wrong.status_code == 401
        right = client.post("/v1/auth/token", json={"email": tenant.email.upper(), "password": PASSWORD})
        assert right.status_code == 429, right.text
        assert 1 <= int(right.headers["retry-after"]) <= 60
        assert right.headers["content-type"].startswith("application/problem+json")


def test_a_device_secret_is_limited_the_same_way(server, make_tenant):
    tenant = make_tenant()
    with httpx.Client(base_url=server.url) as client:
        device = register_device(client, login(client, tenant.email))
        for _ in range(10):
            wrong = client.post("/v1/auth/device-token", json={"device_id": device.id, "secret": "guess"})
            assert wrong.status_code == 401
        right = client.post("/v1/auth/device-token", json={"device_id": device.id, "secret": device.secret})
        assert right.status_code == 429


def test_one_source_guessing_many_accounts_is_stopped(server, make_tenant):
    tenant = make_tenant()
    with httpx.Client(base_url=server.url) as client:
        for _ in range(50):  # one wrong guess each for 50 different accounts
            email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
            assert client.post("/v1/auth/token", json={"email": email, "password": "x" * 12}).status_code == 401
        refused = client.post("/v1/auth/token", json={"email": tenant.email, "password": PASSWORD})
        assert refused.status_code == 429
