from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

from sync_server.bounds import Email

Password = Annotated[str, msgspec.Meta(min_length=12, max_length=256)]


class TokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Annotated[str, msgspec.Meta(max_length=256)]
    # Only needed when the same email and password open accounts in several tenants.
    tenant_id: uuid.UUID | None = None


class DeviceTokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    device_id: uuid.UUID
    secret: Annotated[str, msgspec.Meta(max_length=256)]


class TokenResponse(msgspec.Struct):
    access_token: str
    expires_in: int
    token_type: str = "bearer"


class UserCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    role: Literal["admin", "member"] = "member"


class UserOut(msgspec.Struct):
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: str
