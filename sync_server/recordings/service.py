from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Select, and_, func, select
from sqlalchemy.engine import RowMapping

from sync_server.audit import service as audit
from sync_server.bounds import EARLIEST_TIME
from sync_server.db import devices, epochs, recordings
from sync_server.errors import InvalidInput, ResourceNotFound
from sync_server.recordings.schemas import RecordingCreate, RecordingOut, RecordingUpdate
from sync_server.tenancy import TenantRepository

# An open recording (the night still running) reaches this far, no further: nothing
# loads more than a day of epochs for one night.
OPEN_NIGHT = timedelta(hours=24)


def window_end(started_at: datetime, ended_at: datetime | None) -> datetime:
    return ended_at if ended_at is not None else started_at + OPEN_NIGHT


# What "an epoch of this recording" means, written once: its device's epochs from the
# start of the window to its end (window_end). The device_id match keeps it in the
# recording's tenant: a device belongs to one tenant.
_IN_WINDOW = and_(
    epochs.c.device_id == recordings.c.device_id,
    epochs.c.start_time >= recordings.c.started_at,
    epochs.c.start_time < recordings.c.window_end,
)


def epochs_in_window(repo: TenantRepository, recording: RowMapping, *columns: Any) -> Select[Any]:
    """The select of a recording's epochs. The window's times also appear as constants, so
    that TimescaleDB plans over the night's chunks only, not every chunk of the table."""
    query = repo.select(epochs, *columns).join(recordings, _IN_WINDOW).where(recordings.c.id == recording["id"])
    return query.where(epochs.c.start_time >= recording["started_at"], epochs.c.start_time < recording["window_end"])


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


def _check_times(started_at: datetime, ended_at: datetime | None) -> None:
    if started_at.tzinfo is None or (ended_at and ended_at.tzinfo is None):
        raise InvalidInput("times need a UTC offset, e.g. 2026-11-28T22:00:00Z")
    if started_at < EARLIEST_TIME:
        raise InvalidInput(f"started_at is before {EARLIEST_TIME.date()}: no night of this product lies there")
    if ended_at is not None and ended_at <= started_at:
        raise InvalidInput("ended_at must be after started_at")


async def create_recording(repo: TenantRepository, data: RecordingCreate) -> RecordingOut:
    _check_times(data.started_at, data.ended_at)
    await repo.get(devices, data.device_id, "device")
    recording_id = uuid.uuid4()
    await repo.insert(
        recordings,
        id=recording_id,
        device_id=data.device_id,
        started_at=data.started_at,
        ended_at=data.ended_at,
        window_end=window_end(data.started_at, data.ended_at),
        label=data.label,
    )
    return await get_recording(repo, recording_id)


async def update_recording(repo: TenantRepository, recording_id: uuid.UUID, data: RecordingUpdate) -> RecordingOut:
    """Rename it, or end the night (ended_at; null opens it again)."""
    recording = await repo.get(recordings, recording_id, "recording", for_update=True)
    values: dict[str, Any] = {}
    if data.label is not msgspec.UNSET:
        values["label"] = data.label
    if data.ended_at is not msgspec.UNSET:
        _check_times(recording["started_at"], data.ended_at)
        values["ended_at"] = data.ended_at
        values["window_end"] = window_end(recording["started_at"], data.ended_at)
    if values:
        await repo.update(recordings, recording_id, **values)
    return await get_recording(repo, recording_id)


async def delete_recording(repo: TenantRepository, recording_id: uuid.UUID) -> None:
    """The recording goes; its device's epochs, stages and labels stay (they are the
    device's, and another recording may cover them)."""
    recording = await repo.get(recordings, recording_id, "recording")
    await repo.delete(recordings, recording_id)
    night = f"{recording['label'] or 'night'} of device {recording['device_id']}"
    await audit.record(repo, "recording.delete", recording_id, f"{night} from {recording['started_at']:%Y-%m-%d %H:%M}")


async def get_recording(repo: TenantRepository, recording_id: uuid.UUID) -> RecordingOut:
    query = _with_counts(repo).where(recordings.c.id == recording_id)
    row = (await repo.conn.execute(query)).mappings().first()
    if row is None:
        raise ResourceNotFound(f"recording {recording_id} not found")
    return _to_out(row)


async def list_recordings(repo: TenantRepository, limit: int, offset: int) -> list[RecordingOut]:
    query = _with_counts(repo).order_by(recordings.c.started_at.desc(), recordings.c.id).limit(limit).offset(offset)
    return [_to_out(row) for row in (await repo.conn.execute(query)).mappings()]
