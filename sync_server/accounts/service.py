from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from sync_server.accounts.schemas import UserCreate, UserOut
from sync_server.audit import service as audit
from sync_server.db import devices, tenants, users
from sync_server.errors import Conflict, InvalidInput, NotAuthenticated, NotPermitted, ResourceNotFound
from sync_server.security import Principal, hash_secret, verify_secret
from sync_server.tenancy import TenantRepository

MAX_ACCOUNTS_PER_EMAIL = 20  # bounds the hashes one login can cost


async def create_tenant_with_owner(
    conn: AsyncConnection, name: str, email: str, password: str
) -> tuple[uuid.UUID, uuid.UUID]:
    tenant_id, user_id = uuid.uuid4(), uuid.uuid4()
    await conn.execute(tenants.insert().values(id=tenant_id, name=name))
    await _insert_user(conn, tenant_id, user_id, email, password, "owner")
    return tenant_id, user_id


async def create_user(conn: AsyncConnection, admin: Principal, data: UserCreate) -> UserOut:
    user_id = uuid.uuid4()
    await _insert_user(conn, admin.tenant_id, user_id, data.email, data.password, data.role)
    repo = TenantRepository(conn, admin.tenant_id, actor=f"user:{admin.id}")
    await audit.record(repo, "user.create", user_id, f"{data.email.lower()} as {data.role}")
    return UserOut(id=user_id, tenant_id=admin.tenant_id, email=data.email.lower(), role=data.role)


async def _insert_user(
    conn: AsyncConnection, tenant_id: uuid.UUID, user_id: uuid.UUID, email: str, password: str, role: str
) -> None:
    try:
        # A savepoint, so a duplicate email fails this statement and not the transaction.
        async with conn.begin_nested():
            await conn.execute(
                users.insert().values(
                    id=user_id,
                    tenant_id=tenant_id,
                    email=email.lower(),
                    password_hash=await hash_secret(password),
                    role=role,
                )
            )
    except IntegrityError as exc:
        raise Conflict(f"a user with email {email} already exists in this organisation") from exc


async def authenticate_user(
    conn: AsyncConnection, email: str, password: str, tenant_id: uuid.UUID | None = None
) -> Principal:
    """The user whose email and password these are. One email can have an account in
    several tenants; the password tells them apart, tenant_id when it does not."""
    everywhere = select(users) if tenant_id is None else TenantRepository(conn, tenant_id).select(users)
    query = everywhere.where(users.c.email == email.lower()).order_by(users.c.created_at)
    rows = list((await conn.execute(query.limit(MAX_ACCOUNTS_PER_EMAIL))).mappings())
    # At least one hash is always computed, so an unknown email takes as long as a known one.
    matches = [row for row in rows if await verify_secret(row["password_hash"], password)]
    if not rows:
        await verify_secret(None, password)
    if not matches:
        raise NotAuthenticated("wrong email or password")
    if len(matches) > 1:  # only someone who knows the password gets here
        raise InvalidInput("this email and password open accounts in several organisations: name one with tenant_id")
    row = matches[0]
    if row["disabled_at"] is not None:
        raise NotAuthenticated("this user is disabled")
    return Principal("user", row["id"], row["tenant_id"], row["role"], row["token_version"])


async def authenticate_device(conn: AsyncConnection, device_id: uuid.UUID, secret: str) -> Principal:
    row = (await conn.execute(select(devices).where(devices.c.id == device_id))).mappings().first()
    if not await verify_secret(row["secret_hash"] if row else None, secret) or row is None:
        raise NotAuthenticated("wrong device id or secret")
    if row["disabled_at"] is not None:
        raise NotAuthenticated("this device is disabled")
    return Principal("device", row["id"], row["tenant_id"], "device", row["token_version"])


async def delete_tenant(
    conn: AsyncConnection, owner: Principal, confirm: str, changing: Callable[[str], None] | None = None
) -> None:
    """The organisation and everything under it: users, devices and all they sent,
    recordings, labels, reports, rollouts, the audit log. Final: nothing is kept.
    changing is told every user, device and recording id the cascade removes (as
    TenantRepository tells of the rows it changes): this worker forgets them at once."""
    name = (await conn.execute(select(tenants.c.name).where(tenants.c.id == owner.tenant_id))).scalar()
    if name is None:
        raise ResourceNotFound("organisation not found")
    if confirm != name:
        raise InvalidInput("to delete the organisation and all its data, pass its exact name as confirm")
    await TenantRepository(conn, owner.tenant_id, changing=changing).changing_all()
    await conn.execute(delete(tenants).where(tenants.c.id == owner.tenant_id))


async def _manageable(repo: TenantRepository, admin: Principal, user_id: uuid.UUID) -> None:
    # The owner is never disabled or deleted, nobody acts on themselves, and only the
    # owner acts on admins.
    row = await repo.get(users, user_id, "user", for_update=True)
    if user_id == admin.id:
        raise NotPermitted("you cannot disable or delete yourself")
    if row["role"] == "owner" or (row["role"] == "admin" and admin.role != "owner"):
        raise NotPermitted(f"a {admin.role} cannot disable or delete a {row['role']}")


async def set_user_disabled(repo: TenantRepository, admin: Principal, user_id: uuid.UUID, disabled: bool) -> None:
    """Disabling ends every token of the user at once; enabling lets them log in again."""
    await _manageable(repo, admin, user_id)
    await repo.update(
        users, user_id, disabled_at=datetime.now(UTC) if disabled else None, token_version=users.c.token_version + 1
    )
    await audit.record(repo, "user.disable" if disabled else "user.enable", user_id)


async def delete_user(repo: TenantRepository, admin: Principal, user_id: uuid.UUID) -> None:
    await _manageable(repo, admin, user_id)
    await repo.delete(users, user_id)
    await audit.record(repo, "user.delete", user_id)
