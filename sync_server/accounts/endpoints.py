from __future__ import annotations

from litestar import Controller, Request, post
from litestar.params import JSONBody

from sync_server.accounts import service
from sync_server.accounts.schemas import DeviceTokenRequest, TokenRequest, TokenResponse, UserCreate, UserOut
from sync_server.deps import Config, Conn
from sync_server.errors import problem_responses
from sync_server.security import Principal, admin_guard, issue_token


class AuthController(Controller):
    path = "/v1/auth"
    tags = ["auth"]
    opt = {"exclude_from_auth": True}

    @post("/token", status_code=200, responses=problem_responses(400, 401, 422))
    async def user_token(self, data: JSONBody[TokenRequest], conn: Conn, settings: Config) -> TokenResponse:
        """Exchange email and password for a short-lived user token."""
        principal = await service.authenticate_user(conn, data.email, data.password)
        token, ttl = issue_token(settings, principal)
        return TokenResponse(access_token=token, expires_in=ttl)

    @post("/device-token", status_code=200, responses=problem_responses(400, 401, 422))
    async def device_token(self, data: JSONBody[DeviceTokenRequest], conn: Conn, settings: Config) -> TokenResponse:
        """Exchange a device's id and secret for a token that can only ingest for it."""
        principal = await service.authenticate_device(conn, data.device_id, data.secret)
        token, ttl = issue_token(settings, principal)
        return TokenResponse(access_token=token, expires_in=ttl)


class UserController(Controller):
    path = "/v1/users"
    tags = ["users"]
    guards = [admin_guard]

    @post("/", status_code=201, responses=problem_responses(400, 401, 403, 409, 422))
    async def create_user(self, data: JSONBody[UserCreate], conn: Conn, request: Request) -> UserOut:  # type: ignore[type-arg]
        principal: Principal = request.user
        return await service.create_user(conn, principal, data)
