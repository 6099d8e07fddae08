from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.engine import RowMapping

from sync_server.bounds import EARLIEST_TIME
from sync_server.db import devices, epochs, recordings
from sync_server.errors import InvalidInput, ResourceNotFound
from sync_server.recordings.schemas import RecordingCreate, RecordingOut
from sync_server.tenancy import TenantRepository

# What "an epoch of this recording" means, written once: its device's epochs from the
# start of the window to its end (open-ended while the night is still running). The
# device_id match keeps it in the recording's tenant: a device belongs to one tenant.
_IN_WINDOW = and_(
    epochs.c.device_id == recordings.c.device_id,
    epochs.c.start_time >= recordings.c.started_at,
    or_(recordings.c.ended_at.is_(None), epochs.c.start_time < recordings.c.ended_at),
)


def epochs_in_window(repo: TenantRepository, recording: RowMapping, *columns: Any) -> Select[Any]:
    """The select of a recording's epochs. The window's times also appear as constants, so
    that TimescaleDB plans over the night's chunks only, not every chunk of the table."""
    query = repo.select(epochs, *columns).join(recordings, _IN_WINDOW).where(recordings.c.id == recording["id"])
    query = query.where(epochs.c.start_time >= recording["started_at"])
    if recording["ended_at"] is not None:
        query = query.where(epochs.c.start_time < recording["ended_at"])
    return query


# Counted in the same query as the recording: one round trip for a page, not one per row.
_EPOCH_COUNT = (
    select(func.count())
    .select_from(epochs)
    .where(_IN_WINDOW)
    .correlate(recordings)
    .scalar_subquery()
    .label("epoch_count")
)


def _with_counts(repo: TenantRepository) -> Select[Any]:
    return repo.select(recordings, *recordings.c, _EPOCH_COUNT)


def _to_out(row: RowMapping) -> RecordingOut:
    return RecordingOut(
        id=row["id"],
        device_id=row["device_id"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        label=row["label"],
        epoch_count=row["epoch_count"],
    )


async def create_recording(repo: TenantRepository, data: RecordingCreate) -> RecordingOut:
    if data.started_at.tzinfo is None or (data.ended_at and data.ended_at.tzinfo is None):
        raise InvalidInput("times need a UTC offset, e.g. 2026-11-28T22:00:00Z")
    if data.started_at < EARLIEST_TIME:
        raise InvalidInput(f"started_at is before {EARLIEST_TIME.date()}: no night of this product lies there")
    if data.ended_at is not None and data.ended_at <= data.started_at:
        raise InvalidInput("ended_at must be after started_at")
    await repo.get(devices, data.device_id, "device")
    recording_id = uuid.uuid4()
    await repo.insert(
        recordings,
        id=recording_id,
        device_id=data.device_id,
        started_at=data.started_at,
        ended_at=data.ended_at,
        label=data.label,
    )
    return await get_recording(repo, recording_id)


async def get_recording(repo: TenantRepository, recording_id: uuid.UUID) -> RecordingOut:
    query = _with_counts(repo).where(recordings.c.id == recording_id)
    row = (await repo.conn.execute(query)).mappings().first()
    if row is None:
        raise ResourceNotFound(f"recording {recording_id} not found")
    return _to_out(row)


async def list_recordings(repo: TenantRepository, limit: int, offset: int) -> list[RecordingOut]:
    query = _with_counts(repo).order_by(recordings.c.started_at.desc(), recordings.c.id).limit(limit).offset(offset)
    return [_to_out(row) for row in (await repo.conn.execute(query)).mappings()]
