"""Fixtures: real databases (SQLite file and a PostgreSQL server), migrated with Alembic,
and a real uvicorn server on loopback per backend. Every test builds its own tenant,
so tests are independent without sharing a transaction with the server."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.app import create_app
from sync_server.settings import Settings
from tests.postgres import PostgresServer, require_timescaledb

# PostgreSQL twice: plain, and with TimescaleDB preloaded (hypertables, compression).
BACKENDS = [
    b.strip() for b in os.environ.get("NOCTIS_TEST_BACKENDS", "sqlite,postgresql,timescaledb").split(",") if b.strip()
]
PASSWORD = "a-long-test-password"


@pytest.fixture(scope="session")
def postgresql_url() -> Iterator[str]:
    if url := os.environ.get("NOCTIS_TEST_POSTGRES_URL"):
        yield url
        return
    with PostgresServer(timescaledb=False) as server:
        yield server.url


@pytest.fixture(scope="session")
def timescaledb_url() -> Iterator[str]:
    require_timescaledb()
    with PostgresServer(timescaledb=True) as server:
        yield server.url


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite') / 'noctis.db'}"
    else:
        url = request.getfixturevalue(f"{request.param}_url")
    migrate.upgrade(url)
    return url


@pytest.fixture
def backend(request: pytest.FixtureRequest, database_url: str) -> str:
    """The database leg this test runs on: sqlite | postgresql | timescaledb."""
    return str(request.node.callspec.params["database_url"])


class LiveServer:
    """Uvicorn in a thread, serving on a socket bound to a free loopback port."""

    def __init__(self, settings: Settings, **uvicorn_options: Any) -> None:
        """uvicorn_options: ssl_certfile and ssl_keyfile serve HTTPS."""
        self.settings = settings
        self.socket = socket.socket()
        # Accepted connections inherit this; without it keep-alive requests to an
        # in-process server wait out the peer's 40 ms delayed ACK (Nagle).
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.bind(("127.0.0.1", 0))
        scheme = "https" if uvicorn_options.get("ssl_certfile") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings), log_level="warning", lifespan="on", **uvicorn_options)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def make_settings(database_url: str, data_dir: Path, **overrides: object) -> Settings:
    # The server's defaults but one: every test (and the fuzzer's wrong passwords) comes
    # from 127.0.0.1 into shared databases, so the per-source login limit is lifted;
    # test_brute_force.py runs its servers with the default.
    overrides = {"auth_failures_per_source": 10**6, **overrides}
    return Settings.from_env(
        {}, database_url=database_url, data_dir=data_dir, jwt_secret="test-secret-" + "x" * 32, **overrides
    )


@pytest.fixture(scope="session")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The server's default limits: devices must live with what production answers.
    settings = make_settings(database_url, tmp_path_factory.mktemp("data"))
    with LiveServer(settings) as server:
        yield server


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        yield http


@dataclass
class Tenant:
    id: str
    email: str
    headers: dict[str, str]


@dataclass
class Device:
    id: str
    secret: str
    headers: dict[str, str]  # the device's own token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    """A user's bearer headers."""
    response = client.post("/v1/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def register_device(client: httpx.Client, user_headers: dict[str, str], name: str = "bedside") -> Device:
    """Register a device as the user and exchange its secret for the device's own token."""
    created = client.post("/v1/devices", json={"name": name}, headers=user_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    token = client.post("/v1/auth/device-token", json={"device_id": body["device"]["id"], "secret": body["secret"]})
    assert token.status_code == 200, token.text
    return Device(id=body["device"]["id"], secret=body["secret"], headers=bearer(token.json()["access_token"]))


@pytest.fixture
def make_tenant(client: httpx.Client, database_url: str):  # type: ignore[no-untyped-def]
    def make() -> Tenant:
        email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
        tenant_id, _ = asyncio.run(bootstrap_tenant(database_url, f"tenant {email}", email, PASSWORD))
        return Tenant(id=tenant_id, email=email, headers=login(client, email))

    return make


@pytest.fixture
def make_device(client: httpx.Client):  # type: ignore[no-untyped-def]
    def make(tenant: Tenant, name: str = "bedside") -> Device:
        return register_device(client, tenant.headers, name)

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:  # type: ignore[no-untyped-def]
    return make_tenant()


@pytest.fixture
def device(make_device, tenant: Tenant) -> Device:  # type: ignore[no-untyped-def]
    return make_device(tenant)
