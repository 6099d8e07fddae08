"""Compute and store drift reports: one per device that sent epochs in the window.

A report keeps the window's night summary (details.summary); the verdict compares it
with the device's earlier summaries under the same server model (`history`), across
all devices of the run at once (`judge`): see drift_service.detector.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from drift_service import detector, statistics
from noctis_contract.features import FEATURE_NAMES
from noctis_contract.night_model import NightModel
from sync_server.db import drift_reports, epochs, feature_values, predictions

LEVELS = ("stable", "major", "unknown")


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
        "level": "unknown",  # until judge()
        "details": {
            # Against the training population, for reading: not what the level says.
            "features": per_feature,
            "edge_epochs_compared": agreement["epochs"],
            "server_scored_epochs": len(scored),
            "summary": detector.night_summary(features, edge, server),
        },
    }


async def history(conn: AsyncConnection, device_id: uuid.UUID, model_version: str) -> list[dict[str, float]]:
    """The device's earlier nights that count, oldest first: reports under this server
    model, long enough to judge, each starting after the one before ended (a worker run
    hourly over 24-hour windows must not count one night 24 times)."""
    query = (
        select(
            drift_reports.c.window_start, drift_reports.c.window_end, drift_reports.c.epochs, drift_reports.c.details
        )
        .where(drift_reports.c.device_id == device_id, drift_reports.c.server_model_version == model_version)
        .order_by(drift_reports.c.window_end, drift_reports.c.id)
    )
    nights: list[dict[str, float]] = []
    last_end: datetime | None = None
    for row in await conn.execute(query):
        summary = row.details.get("summary")
        if summary is None or row.epochs < detector.MIN_EPOCHS or (last_end and row.window_start < last_end):
            continue
        nights.append({name: float("nan") if value is None else value for name, value in summary.items()})
        last_end = row.window_end
    return nights


def judge(reports: list[dict[str, Any]], histories: list[list[dict[str, float]]]) -> None:
    """Set each report's level and verdict: `unknown` while the device has fewer than
    BASELINE_NIGHTS earlier nights or tonight is too short to judge, `major` when the
    detector flags it (with the kind and the strongest statistic), else `stable`."""
    b = detector.BASELINE_NIGHTS
    judged = {}
    for i, (report, earlier) in enumerate(zip(reports, histories)):
        if len(earlier) >= b and report["epochs"] >= detector.MIN_EPOCHS:
            nights = [*earlier[b:], report["details"]["summary"]]
            judged[i] = detector.History(i, report["tenant_id"], earlier[:b], nights)
        else:
            short = report["epochs"] < detector.MIN_EPOCHS
            reason = f"night shorter than {detector.MIN_EPOCHS} epochs" if short else "learning the baseline"
            report["details"]["verdict"] = {"reason": reason, "baseline_nights": min(len(earlier), b)}
    devices, tenants = detector.judge(list(judged.values()))
    for i, history in judged.items():
        verdict, report = devices[i], reports[i]
        report["level"] = "major" if verdict.kind else "stable"
        report["details"]["verdict"] = {
            "kind": verdict.kind,
            "statistic": verdict.statistic,
            "p_value": verdict.p_value,
        }
        population = tenants.get(history.tenant)
        if population is not None:
            report["details"]["population"] = {
                "kind": population.kind,
                "statistic": population.statistic,
                "p_value": population.p_value,
            }


async def store(conn: AsyncConnection, report: dict[str, Any]) -> None:
    summary = report["details"]["summary"]  # JSON has no NaN: unmeasured is null
    report["details"]["summary"] = {k: None if np.isnan(v) else v for k, v in summary.items()}
    await conn.execute(drift_reports.insert().values(**report))
