"""A device's data as CSV: every epoch with its features, the edge stage the device gave
it and the stage the active server model stored for it. A window of at most a month
per request, so no export holds more than ~90,000 rows in memory."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_

from noctis_contract.features import FEATURE_NAMES
from noctis_contract.stages import STAGE_LABELS
from sync_server.db import devices, epochs, feature_values, predictions
from sync_server.errors import InvalidInput
from sync_server.tenancy import TenantRepository

MAX_WINDOW = timedelta(days=31)
HEADER = ["seq", "start", *FEATURE_NAMES, "edge_stage", "server_stage", "server_model_version"]


def window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """The export's [start, end): by default the last 31 days."""
    end = end or datetime.now(UTC)
    start = start or end - MAX_WINDOW
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("times need a UTC offset, e.g. 2026-11-28T22:00:00Z")
    if not start < end <= start + MAX_WINDOW:
        raise InvalidInput("the window runs forward and spans at most 31 days: export a month at a time")
    return start, end


async def epochs_csv(
    repo: TenantRepository, device_id: uuid.UUID, model_version: str | None, start: datetime, end: datetime
) -> str:
    await repo.get(devices, device_id, "device")
    scored = and_(
        predictions.c.device_id == epochs.c.device_id,
        predictions.c.seq == epochs.c.seq,
        predictions.c.start_time == epochs.c.start_time,
        predictions.c.model_version == model_version,
    )
    query = (
        repo.select(
            epochs,
            epochs.c.seq,
            epochs.c.start_time,
            *(epochs.c[name] for name in FEATURE_NAMES),
            epochs.c.edge_stage,
            predictions.c.stage,
        )
        .select_from(epochs.outerjoin(predictions, scored))
        .where(epochs.c.device_id == device_id, epochs.c.start_time >= start, epochs.c.start_time < end)
        .order_by(epochs.c.seq)
    )
    rows = (await repo.conn.execute(query)).all()
    values = feature_values(rows, first=2)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for row, features in zip(rows, values):
        edge, server = row[-2], row[-1]
        writer.writerow(
            [
                row.seq,
                row.start_time.isoformat().replace("+00:00", "Z"),
                *("" if v != v else f"{v:.6g}" for v in features),  # NaN: missing, an empty cell
                "" if edge is None else STAGE_LABELS[edge],
                "" if server is None else STAGE_LABELS[server],
                model_version if server is not None else "",
            ]
        )
    return out.getvalue()
