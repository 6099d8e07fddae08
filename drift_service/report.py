"""Compute and store drift reports: one per device that sent epochs in the window."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drift_service import statistics
from noctis_contract.features import FEATURE_NAMES
from noctis_contract.night_model import NightModel
from sync_server.db import drift_reports, epochs, feature_values, predictions


async def devices_with_epochs(
    conn: AsyncConnection, start: datetime, end: datetime
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    query = (
        select(epochs.c.tenant_id, epochs.c.device_id)
        .where(epochs.c.start_time >= start, epochs.c.start_time < end)
        .distinct()
    )
    return [(row.tenant_id, row.device_id) for row in await conn.execute(query)]


async def device_report(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    start: datetime,
    end: datetime,
    model: NightModel,
    manifest: dict[str, Any],
) -> dict[str, Any]:
    joined = epochs.outerjoin(
        predictions,
        and_(
            predictions.c.device_id == epochs.c.device_id,
            predictions.c.seq == epochs.c.seq,
            predictions.c.start_time == epochs.c.start_time,
            predictions.c.model_version == model.version,
        ),
    )
    query = (
        select(*(epochs.c[name] for name in FEATURE_NAMES), epochs.c.edge_stage, predictions.c.stage)
        .select_from(joined)
        .where(
            epochs.c.tenant_id == tenant_id,
            epochs.c.device_id == device_id,
            epochs.c.start_time >= start,
            epochs.c.start_time < end,
        )
        .order_by(epochs.c.seq)
    )
    rows = (await conn.execute(query)).all()
    features = feature_values(rows)
    edge = np.array([-1 if row[-2] is None else row[-2] for row in rows])
    server = np.array([-1 if row[-1] is None else row[-1] for row in rows])

    reference = manifest.get("reference_stats", {})
    per_feature = {}
    for i, name in enumerate(FEATURE_NAMES):
        stats = reference.get(name, {})
        value = statistics.feature_psi(features[:, i], stats.get("quantiles", []))
        per_feature[name] = {
            "psi": value,
            "level": statistics.level(value),
            "missing_ratio": float(np.isnan(features[:, i]).mean()),
            "reference_missing_ratio": stats.get("missing_ratio"),
        }
    psis = [f["psi"] for f in per_feature.values() if f["psi"] is not None]
    scored = server[server >= 0]
    prediction_psi = statistics.psi(model.prior, statistics.stage_mix(scored)) if len(scored) else None
    agreement = statistics.edge_agreement(edge, server)
    max_feature_psi = max(psis) if psis else None
    worst = max((v for v in (max_feature_psi, prediction_psi) if v is not None), default=None)
    return {
        "tenant_id": tenant_id,
        "device_id": device_id,
        "window_start": start,
        "window_end": end,
        "server_model_version": model.version,
        "epochs": len(rows),
        "edge_agreement": agreement["agreement"],
        "edge_kappa": agreement["kappa"],
        "prediction_psi": prediction_psi,
        "max_feature_psi": max_feature_psi,
        "level": statistics.level(worst),
        "details": {
            "features": per_feature,
            "edge_epochs_compared": agreement["epochs"],
            "server_scored_epochs": len(scored),
        },
    }


async def store(conn: AsyncConnection, report: dict[str, Any]) -> None:
    await conn.execute(drift_reports.insert().values(**report))
