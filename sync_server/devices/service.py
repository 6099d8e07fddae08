from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.engine import RowMapping

from sync_server.audit import service as audit
from sync_server.db import devices, sync_gaps
from sync_server.devices.schemas import DeviceCreate, DeviceCreated, DeviceOut
from sync_server.security import hash_secret
from sync_server.tenancy import TenantRepository


def to_out(row: RowMapping, gap_epochs: int = 0) -> DeviceOut:
    return DeviceOut(
        id=row["id"],
        name=row["name"],
        ack_seq=row["ack_seq"],
        last_seen_at=row["last_seen_at"],
        created_at=row["created_at"],
        declared_gap_epochs=gap_epochs,
        health=row["health"],
        disabled=row["disabled_at"] is not None,
        ota_offered_version=row["ota_offered_version"],
        ota_offered_rollout=row["ota_offered_rollout"],
        ota_offered_at=row["ota_offered_at"],
        edge_model_number=row["edge_model_number"],
        edge_model_since=row["edge_model_since"],
    )


async def _gap_epochs(repo: TenantRepository, device_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not device_ids:
        return {}
    size = func.sum(sync_gaps.c.last_seq - sync_gaps.c.first_seq + 1)
    query = (
        repo.select(sync_gaps, sync_gaps.c.device_id, size)
        .where(sync_gaps.c.device_id.in_(device_ids))
        .group_by(sync_gaps.c.device_id)
    )
    return {row[0]: int(row[1]) for row in await repo.conn.execute(query)}


async def create_device(repo: TenantRepository, data: DeviceCreate) -> DeviceCreated:
    device_id, secret = uuid.uuid4(), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    await repo.insert(
        devices, id=device_id, name=data.name, secret_hash=await hash_secret(secret), ack_seq=-1, created_at=now
    )
    await audit.record(repo, "device.create", device_id, data.name)
    out = DeviceOut(id=device_id, name=data.name, ack_seq=-1, last_seen_at=None, created_at=now)
    return DeviceCreated(device=out, secret=secret)


async def list_devices(repo: TenantRepository, limit: int, offset: int) -> list[DeviceOut]:
    rows = await repo.list(devices, devices.c.created_at, devices.c.id, limit=limit, offset=offset)
    gaps = await _gap_epochs(repo, [r["id"] for r in rows])
    return [to_out(r, gaps.get(r["id"], 0)) for r in rows]


async def get_device(repo: TenantRepository, device_id: uuid.UUID) -> DeviceOut:
    row = await repo.get(devices, device_id, "device")
    return to_out(row, (await _gap_epochs(repo, [device_id])).get(device_id, 0))


async def set_disabled(repo: TenantRepository, device_id: uuid.UUID, disabled: bool) -> DeviceOut:
    """Disable (its tokens end, its secret is refused) or enable again (with a new token)."""
    await repo.get(devices, device_id, "device", for_update=True)
    await repo.update(
        devices,
        device_id,
        disabled_at=datetime.now(UTC) if disabled else None,
        token_version=devices.c.token_version + 1,
    )
    await audit.record(repo, "device.disable" if disabled else "device.enable", device_id)
    return await get_device(repo, device_id)


async def rotate_secret(repo: TenantRepository, device_id: uuid.UUID) -> DeviceCreated:
    """A new secret, shown once; the old one and every token issued with it stop working."""
    await repo.get(devices, device_id, "device", for_update=True)
    secret = secrets.token_urlsafe(32)
    await repo.update(
        devices, device_id, secret_hash=await hash_secret(secret), token_version=devices.c.token_version + 1
    )
    await audit.record(repo, "device.secret", device_id, "secret rotated; its tokens ended")
    return DeviceCreated(device=await get_device(repo, device_id), secret=secret)


async def delete_device(repo: TenantRepository, device_id: uuid.UUID) -> None:
    """The device and everything it sent (epochs, predictions, gaps, recordings, reports)."""
    device = await repo.get(devices, device_id, "device", for_update=True)
    await repo.delete(devices, device_id)
    await audit.record(repo, "device.delete", device_id, f"{device['name']} and all it sent")
