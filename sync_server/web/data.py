"""What the pages show, read through the tenant's repository: the same rules as the API."""

from __future__ import annotations

import calendar
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from drift_service.statistics import edge_agreement
from noctis_contract.night_model import NightModel
from noctis_contract.sleep_metrics import hypnogram_svg, summarize
from sync_server.db import devices, drift_reports, epochs, recordings
from sync_server.predict.service import edge_stages, loaded, scored_night
from sync_server.tenancy import TenantRepository


async def latest_drift(repo: TenantRepository) -> dict[uuid.UUID, RowMapping]:
    """Each device's newest drift report."""
    query = repo.select(drift_reports).order_by(drift_reports.c.id.desc()).limit(5000)
    latest: dict[uuid.UUID, RowMapping] = {}
    for row in (await repo.conn.execute(query)).mappings():
        latest.setdefault(row["device_id"], row)
    return latest


@dataclass
class DeviceRow:
    id: uuid.UUID
    name: str
    last_seen_at: datetime | None
    ack_seq: int
    queue_fill: str
    edge_model: str
    firmware: str
    drift: str
    disabled: bool


def device_row(row: RowMapping, drift: RowMapping | None) -> DeviceRow:
    health: dict[str, Any] = row["health"] or {}
    capacity = health.get("queue_capacity") or 0
    fill = f"{100 * health.get('queue_pending', 0) / capacity:.0f} %" if capacity else "-"
    return DeviceRow(
        id=row["id"],
        name=row["name"],
        last_seen_at=row["last_seen_at"],
        ack_seq=row["ack_seq"],
        queue_fill=fill,
        edge_model=str(row["edge_model_number"] or "-"),
        firmware=str(health.get("firmware_version") or "-"),
        drift=drift["level"] if drift else "unknown",
        disabled=row["disabled_at"] is not None,
    )


async def device_rows(repo: TenantRepository) -> list[DeviceRow]:
    drift = await latest_drift(repo)
    rows = await repo.list(devices, devices.c.name, devices.c.id, limit=1000)
    return [device_row(row, drift.get(row["id"])) for row in rows]


async def device_nights(repo: TenantRepository, device_id: uuid.UUID) -> list[RowMapping]:
    query = (
        repo.select(recordings)
        .where(recordings.c.device_id == device_id)
        .order_by(recordings.c.started_at.desc())
        .limit(400)
    )
    return list((await repo.conn.execute(query)).mappings())


def month_grid(nights: list[RowMapping], today: date) -> tuple[str, list[list[tuple[int, list[RowMapping]]]]]:
    """The calendar of the newest night's month (else this month): weeks of (day, the
    nights that started that day); day 0 pads the first and last weeks."""
    anchor = nights[0]["started_at"].date() if nights else today
    by_day: dict[int, list[RowMapping]] = {}
    for night in nights:
        start = night["started_at"].date()
        if (start.year, start.month) == (anchor.year, anchor.month):
            by_day.setdefault(start.day, []).append(night)
    weeks = calendar.Calendar().monthdayscalendar(anchor.year, anchor.month)
    return f"{calendar.month_name[anchor.month]} {anchor.year}", [[(d, by_day.get(d, [])) for d in w] for w in weeks]


@dataclass
class NightPage:
    recording: RowMapping
    device: RowMapping
    model_version: str
    epochs: int
    server_svg: str
    edge_svg: str
    metrics: dict[str, Any]
    agreement: float | None
    kappa: float | None
    drift: RowMapping | None


async def night_page(
    repo: TenantRepository, engine: AsyncEngine, model: NightModel | None, recording_id: uuid.UUID
) -> NightPage:
    recording = await repo.get(recordings, recording_id, "recording")
    device = await repo.get(devices, recording["device_id"], "device")
    night = await scored_night(repo, engine, loaded(model), recording)
    server = np.array(night.stages(), dtype=int)
    edge = np.array(await edge_stages(repo, recording), dtype=int)
    compared = edge_agreement(edge, server) if len(edge) == len(server) else {"agreement": None, "kappa": None}
    drift = (await latest_drift(repo)).get(recording["device_id"])
    return NightPage(
        recording=recording,
        device=device,
        model_version=night.model_version,
        epochs=len(server),
        server_svg=hypnogram_svg(server.tolist(), f"server model {night.model_version}"),
        edge_svg=hypnogram_svg(edge.tolist(), "the device's own stages (edge model)"),
        metrics=summarize(server.tolist()),
        agreement=compared["agreement"],
        kappa=compared["kappa"],
        drift=drift,
    )


async def new_epochs(repo: TenantRepository, device_id: uuid.UUID, after_seq: int) -> list[RowMapping]:
    """A device's epochs stored beyond after_seq (at most 200), for the live view."""
    query = (
        repo.select(epochs, epochs.c.seq, epochs.c.start_time, epochs.c.edge_stage)
        .where(and_(epochs.c.device_id == device_id, epochs.c.seq > after_seq))
        .order_by(epochs.c.seq)
        .limit(200)
    )
    return list((await repo.conn.execute(query)).mappings())
