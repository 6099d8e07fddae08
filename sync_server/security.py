"""Passwords, tokens, and the authentication middleware, which also checks who may call
a route (a route's `needs`).

Two kinds of principal carry a JWT: users (roles owner, admin, member) and devices.
A device token can only ingest for its own device; a user token can do everything
else its role allows, always inside its own tenant.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal, TypeAlias

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sync_server.changes import Kept
from sync_server.db import READ_ONLY, devices, users
from sync_server.errors import NotAuthenticated, NotPermitted
from sync_server.headers import header_values
from sync_server.settings import Settings

ALGORITHM = "HS256"  # pinned: a token naming any other algorithm is refused
PrincipalKind = Literal["user", "device"]
ADMIN_ROLES = frozenset({"owner", "admin"})

# argon2id as argon2-cffi's RFC 9106 "low memory" profile: t=3, m=64 MiB, p=4, above
# OWASP's Password Storage Cheat Sheet minimum (m=19 MiB, t=2, p=1).
_hasher = PasswordHasher()
# Verified against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = _hasher.hash("noctis-timing-equaliser")
# Hashes run on their own small pool: a flood of logins costs at most this many times
# 64 MiB and never takes the threads that inference and parsing use.
_HASH_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="argon2")


async def hash_secret(secret: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, _hasher.hash, secret)


async def verify_secret(secret_hash: str | None, secret: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(secret_hash or _DUMMY_HASH, secret) and secret_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(_HASH_POOL, _verify)


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    id: uuid.UUID
    tenant_id: uuid.UUID
    role: str  # a user's role; "device" for devices
    token_version: int = 0  # the principal's at issue; a token with an older one is refused

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and self.role in ADMIN_ROLES


def issue_token(settings: Settings, principal: Principal) -> tuple[str, int]:
    ttl = settings.user_token_ttl_seconds if principal.kind == "user" else settings.device_token_ttl_seconds
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(principal.id),
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "typ": principal.kind,
        "tid": str(principal.tenant_id),
        "role": principal.role,
        "ver": principal.token_version,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM), ttl


LEEWAY_SECONDS = 30  # clock skew allowed between the server's workers and replicas


def read_token(settings: Settings, token: str) -> Principal:
    principal, expires = _verified_token(token, settings.jwt_secret, settings.jwt_audience, settings.jwt_issuer)
    # Checked on every use: the verdict below is kept, and time goes on.
    if time.time() > expires + LEEWAY_SECONDS:
        raise NotAuthenticated("token expired")
    return principal


# A token's signature and claims do not change: each worker checks a token once and
# keeps the verdict (invalid tokens are not kept). Decoding was an eighth of a stored
# night's predict, answered without the database. 10,000 tokens are a few MB.
@functools.lru_cache(maxsize=10_000)
def _verified_token(token: str, secret: str, audience: str, issuer: str) -> tuple[Principal, float]:
    """The token's principal and its expiry (epoch seconds)."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "tid", "typ", "ver"]},
            leeway=LEEWAY_SECONDS,
        )
        kind = claims["typ"]
        if kind not in ("user", "device"):
            raise NotAuthenticated("unknown token type")
        version = claims["ver"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise NotAuthenticated("invalid token")
        principal = Principal(
            kind=kind,
            id=uuid.UUID(claims["sub"]),
            tenant_id=uuid.UUID(claims["tid"]),
            role=str(claims.get("role", "")),
            token_version=version,
        )
        return principal, float(claims["exp"])
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("token expired") from exc
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        # PyJWT's own message would tell an attacker which check failed.
        raise NotAuthenticated("invalid token") from exc


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        headers = header_values(connection.scope, b"authorization")
        if len(headers) > 1:
            raise NotAuthenticated("send one Authorization header, not several")
        scheme, _, token = (headers[0] if headers else "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise NotAuthenticated("missing bearer token (Authorization: Bearer <token>)")
        settings: Settings = connection.app.state.settings
        claimed = read_token(settings, token.strip())
        state = connection.app.state
        principal = await live_principal(state.engine, claimed, state.principals)
        authorize(principal, connection.route_handler.opt.get("needs"))
        return AuthenticationResult(user=principal, auth=token)


# What live_principal checks a token against: tenant_id, disabled_at, token_version, role.
PrincipalRow: TypeAlias = tuple[uuid.UUID, datetime | None, int, str]


async def live_principal(engine: AsyncEngine, claimed: Principal, kept: Kept[PrincipalRow]) -> Principal:
    """The token's principal as the database has it now: it exists, in the token's
    tenant, is enabled, and no credential change has happened since the token was
    issued. Its role is read here too, so a changed role applies at once. The row is
    kept until the principal changes (sync_server.changes): most requests ask nothing."""
    row = kept.get((claimed.kind, claimed.id))  # a user and a device may share an id
    if row is None:
        since = kept.changes.token()
        table = users if claimed.kind == "user" else devices
        role_column = table.c.role if claimed.kind == "user" else literal("device")
        query = select(table.c.tenant_id, table.c.disabled_at, table.c.token_version, role_column)
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One round trip, no transaction around it. (The tenant is compared
                # below, so row-level security adds nothing here.)
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await conn.execution_options(**{READ_ONLY: True})  # SQLite: no write lock to read
            found = (await conn.execute(query.where(table.c.id == claimed.id))).first()
        if found is None:
            raise NotAuthenticated("invalid token")
        row = (found[0], found[1], found[2], str(found[3]))
        kept.put((claimed.kind, claimed.id), row, [claimed.id], since)
    tenant_id, disabled_at, token_version, role = row
    if tenant_id != claimed.tenant_id or disabled_at is not None or token_version != claimed.token_version:
        raise NotAuthenticated("invalid token")
    return claimed if claimed.role == role else replace(claimed, role=role)  # a changed role applies at once


# Who may call a route: its `needs` option, set on a controller (`opt = {"needs": "user"}`)
# or a handler (`@get(..., needs="admin")`, which wins). Checked here, as the token is
# read, rather than by Litestar guards: Litestar copies the route handler for each guard
# on each request, 7 % of the CPU of a kept night's predict.
Needs = Literal["user", "admin", "owner", "device"]
NEEDS: dict[Needs, tuple[Callable[[Principal], bool], str]] = {
    "user": (lambda p: p.kind == "user", "this route needs a user token, not a device token"),
    "admin": (lambda p: p.is_admin, "this route needs an owner or admin"),
    "owner": (lambda p: p.kind == "user" and p.role == "owner", "this route needs the organisation's owner"),
    "device": (lambda p: p.kind == "device", "this route needs a device token"),
}


def authorize(principal: Principal, needs: Needs | None) -> None:
    if needs is None:
        return
    permitted, refusal = NEEDS[needs]
    if not permitted(principal):
        raise NotPermitted(refusal)


def check_needs(app: Litestar) -> None:
    """A misspelt `needs` would fail every request to its route: refuse it at start."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            if handler.opt.get("needs") not in (None, *NEEDS):
                raise ValueError(f"{handler.handler_name}: needs must be one of {', '.join(NEEDS)}")
