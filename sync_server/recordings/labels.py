"""Stage labels for a recording's epochs, scored by people (PSG): upload, read back.

A label names a stored epoch by its start time, exactly as the device stamped it
(`GET /v1/recordings/{id}/labels` lists the starts with any labels they have). Uploading
replaces the recording's labels: sending the same file again changes nothing.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime

import msgspec

from noctis_contract.stages import STAGE_LABELS, stage_from_name
from sync_server.audit import service as audit
from sync_server.db import epochs, insert_ignoring_conflicts, recordings, stage_labels
from sync_server.errors import InvalidInput
from sync_server.recordings.schemas import LabelIn, LabelsIn, LabelsOut, StageLabel
from sync_server.recordings.service import epochs_in_window
from sync_server.tenancy import TenantRepository


def parse_csv(body: bytes, scorer: str) -> LabelsIn:
    """`start,stage` rows under that header (ISO 8601 times with an offset)."""
    try:
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"not a CSV file: {exc}") from exc
    labels = []
    for line, row in enumerate(rows, start=2):
        if set(row) != {"start", "stage"} or None in row.values():
            raise InvalidInput("the CSV needs the header start,stage and two columns on every row")
        try:
            labels.append(LabelIn(start=datetime.fromisoformat(row["start"]), stage=row["stage"]))
        except ValueError as exc:
            raise InvalidInput(f"line {line}: {exc}") from exc
    try:
        return msgspec.convert({"scorer": scorer, "epochs": labels}, LabelsIn, from_attributes=True)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from exc


async def replace_labels(repo: TenantRepository, recording_id: uuid.UUID, data: LabelsIn) -> LabelsOut:
    recording = await repo.get(recordings, recording_id, "recording")
    stages = {}
    for i, label in enumerate(data.epochs):
        if label.start.tzinfo is None:
            raise InvalidInput(f"epochs[{i}].start needs a UTC offset")
        if label.start in stages:
            raise InvalidInput(f"epochs[{i}]: a second label for {label.start.isoformat()}")
        try:
            stages[label.start] = int(stage_from_name(label.stage))
        except ValueError as exc:
            raise InvalidInput(f"epochs[{i}]: {exc}") from exc
    stored = {row[0] for row in await repo.conn.execute(epochs_in_window(repo, recording, epochs.c.start_time))}
    unknown = sorted(start for start in stages if start not in stored)
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} labels name no stored epoch of this recording (first: {unknown[0].isoformat()}); "
            "GET the labels route for the epochs' starts"
        )
    await repo.delete_where(
        stage_labels,
        stage_labels.c.device_id == recording["device_id"],
        stage_labels.c.start_time >= recording["started_at"],
        stage_labels.c.start_time < recording["window_end"],
    )
    same = {"device_id": recording["device_id"], "tenant_id": repo.tenant_id, "scorer": data.scorer}
    await insert_ignoring_conflicts(
        repo.conn, stage_labels, same, {"start_time": list(stages), "stage": list(stages.values())}
    )
    await audit.record(repo, "labels.replace", recording_id, f"{len(stages)} epochs scored by {data.scorer}")
    return await read_labels(repo, recording_id)


async def read_labels(repo: TenantRepository, recording_id: uuid.UUID) -> LabelsOut:
    """Every stored epoch of the recording in time order, with its label if it has one."""
    recording = await repo.get(recordings, recording_id, "recording")
    query = epochs_in_window(repo, recording, epochs.c.start_time, stage_labels.c.stage, stage_labels.c.scorer)
    query = query.outerjoin(
        stage_labels,
        (stage_labels.c.device_id == epochs.c.device_id) & (stage_labels.c.start_time == epochs.c.start_time),
    ).order_by(epochs.c.start_time)
    rows = (await repo.conn.execute(query)).all()
    scorers = sorted({row.scorer for row in rows if row.scorer is not None})
    return LabelsOut(
        recording_id=recording_id,
        scorers=scorers,
        labelled=sum(row.stage is not None for row in rows),
        epochs=[
            StageLabel(start=row.start_time, stage=None if row.stage is None else STAGE_LABELS[row.stage])
            for row in rows
        ],
    )
