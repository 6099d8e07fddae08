from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, post
from litestar.params import FromPath, FromQuery, JSONBody

from sync_server.accounts import service
from sync_server.accounts.schemas import DeviceTokenRequest, TokenRequest, TokenResponse, UserCreate, UserOut
from sync_server.accounts.throttle import credential_attempt
from sync_server.deps import Config, Conn, Engine, Repo
from sync_server.errors import problem_responses
from sync_server.security import Principal, issue_token

AnyRequest = Request[Any, Any, Any]


def _source(request: AnyRequest) -> str:
    # The peer address; behind a proxy, run uvicorn with --proxy-headers and
    # --forwarded-allow-ips so that this is the client's and not the proxy's.
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]
    opt = {"exclude_from_auth": True}

    @post("/token", status_code=200, responses=problem_responses(400, 401, 422, 429))
    async def user_token(
        self, data: JSONBody[TokenRequest], engine: Engine, settings: Config, request: AnyRequest
    ) -> TokenResponse:
        """Exchange email and password for a short-lived user token."""
        email = data.email.lower()
        async with credential_attempt(engine, settings, email, _source(request)), engine.connect() as conn:
            principal = await service.authenticate_user(conn, email, data.password, data.tenant_id)
        token, ttl = issue_token(settings, principal)
        return TokenResponse(access_token=token, expires_in=ttl)

    @post("/device-token", status_code=200, responses=problem_responses(400, 401, 422, 429))
    async def device_token(
        self, data: JSONBody[DeviceTokenRequest], engine: Engine, settings: Config, request: AnyRequest
    ) -> TokenResponse:
        """Exchange a device's id and secret for a token that can only ingest for it."""
        device = str(data.device_id)
        async with credential_attempt(engine, settings, device, _source(request)), engine.connect() as conn:
            principal = await service.authenticate_device(conn, data.device_id, data.secret)
        token, ttl = issue_token(settings, principal)
        return TokenResponse(access_token=token, expires_in=ttl)


class UserController(Controller):
    path = "/v1/users"
    tags = ["users"]
    opt = {"needs": "admin"}

    @post("/", status_code=201, responses=problem_responses(400, 401, 403, 409, 422))
    async def create_user(self, data: JSONBody[UserCreate], conn: Conn, request: AnyRequest) -> UserOut:
        principal: Principal = request.user
        return await service.create_user(conn, principal, data)

    @post("/{user_id:uuid}/disable", status_code=204, responses=problem_responses(401, 403, 404))
    async def disable_user(self, user_id: FromPath[uuid.UUID], repo: Repo, request: AnyRequest) -> None:
        """End every token of the user now and refuse their logins until enabled again."""
        await service.set_user_disabled(repo, request.user, user_id, True)

    @post("/{user_id:uuid}/enable", status_code=204, responses=problem_responses(401, 403, 404))
    async def enable_user(self, user_id: FromPath[uuid.UUID], repo: Repo, request: AnyRequest) -> None:
        await service.set_user_disabled(repo, request.user, user_id, False)

    @delete("/{user_id:uuid}", responses=problem_responses(401, 403, 404))
    async def delete_user(self, user_id: FromPath[uuid.UUID], repo: Repo, request: AnyRequest) -> None:
        await service.delete_user(repo, request.user, user_id)


class TenantController(Controller):
    path = "/v1/tenant"
    tags = ["accounts"]

    @delete("/", needs="owner", responses=problem_responses(401, 403, 422))
    async def delete_tenant(self, conn: Conn, request: AnyRequest, confirm: FromQuery[str] = "") -> None:
        """Delete the organisation and everything in it, for good: its users, devices and
        all they sent, recordings, labels, reports, rollouts and audit log. The owner
        only, with the organisation's exact name as ``confirm``."""
        await service.delete_tenant(conn, request.user, confirm, request.app.state.principals.changes.announced)
