from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy.engine import RowMapping

from sync_server.db import devices
from sync_server.devices.schemas import DeviceCreate, DeviceCreated, DeviceOut
from sync_server.security import hash_secret
from sync_server.tenancy import TenantRepository


def to_out(row: RowMapping) -> DeviceOut:
    return DeviceOut(
        id=row["id"],
        name=row["name"],
        ack_seq=row["ack_seq"],
        last_seen_at=row["last_seen_at"],
        created_at=row["created_at"],
    )


async def create_device(repo: TenantRepository, data: DeviceCreate) -> DeviceCreated:
    device_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await repo.insert(
        devices, id=device_id, name=data.name, secret_hash=await hash_secret(secret), ack_seq=-1, created_at=now
    )
    out = DeviceOut(id=device_id, name=data.name, ack_seq=-1, last_seen_at=None, created_at=now)
    return DeviceCreated(device=out, secret=secret)


async def list_devices(repo: TenantRepository, limit: int, offset: int) -> list[DeviceOut]:
    return [to_out(r) for r in await repo.list(devices, devices.c.created_at, devices.c.id, limit=limit, offset=offset)]


async def get_device(repo: TenantRepository, device_id: uuid.UUID) -> DeviceOut:
    return to_out(await repo.get(devices, device_id, "device"))
