"""How well a server model stages the nights people have scored (stage_labels).

Every labelled recording is scored whole (the model reads each epoch in its night's
context) and compared on its labelled epochs, with the same measures as the model
cards (model_export.server_model.scores). Promotion compares the candidate with the
active model on exactly these nights.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import anyio.to_thread
import numpy as np
from sqlalchemy import exists, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from noctis_contract.features import dequantize
from noctis_contract.night_model import NightModel
from noctis_contract.stages import STAGE_LABELS
from sync_server.db import predictions, recordings, stage_labels
from sync_server.models.schemas import ActiveAgreement, LabelScores
from sync_server.predict.service import load_night
from sync_server.tenancy import TenantRepository


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    # Imported when first used: model_export's measures bring scikit-learn, a second of
    # import that a worker pays only once someone evaluates.
    from model_export.server_model import scores as measured

    return measured(truth, predicted)


def confusion(truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    from model_export.server_model import confusion as counted

    return counted(truth, predicted)


_LABELLED = exists().where(
    stage_labels.c.device_id == recordings.c.device_id,
    stage_labels.c.start_time >= recordings.c.started_at,
    stage_labels.c.start_time < recordings.c.window_end,
)


@dataclass
class Evaluation:
    version: str
    nights: int
    truth: np.ndarray  # the labelled epochs' stages
    predicted: np.ndarray

    @property
    def scores(self) -> dict[str, float]:
        return scores(self.truth, self.predicted) if len(self.truth) else {}

    def summary(self) -> LabelScores:
        s = self.scores
        return LabelScores(
            nights=self.nights,
            epochs=len(self.truth),
            kappa4=s.get("kappa4"),
            acc4=s.get("acc4"),
            recall={name: s[f"recall_{name}"] for name in STAGE_LABELS if f"recall_{name}" in s},
            confusion=confusion(self.truth, self.predicted).tolist(),
        )

    def lines(self) -> list[str]:
        """For people: the scores, then the confusion matrix (rows: labels, columns: model)."""
        if not len(self.truth):
            return [f"{self.version}: no labelled epochs"]
        s = self.scores
        recalls = " ".join(f"{name}={s[f'recall_{name}']:.3f}" for name in STAGE_LABELS)
        lines = [
            f"{self.version} on {self.nights} labelled nights, {len(self.truth)} epochs: "
            f"kappa4={s['kappa4']:.3f} acc4={s['acc4']:.3f} acc3={s['acc3']:.3f} "
            f"sleepwake_acc={s['sleepwake_acc']:.3f}",
            f"recall {recalls}",
            "label / model ".ljust(14) + "".join(f"{name:>8}" for name in STAGE_LABELS),
        ]
        matrix = confusion(self.truth, self.predicted)
        lines += [f"{name:<14}" + "".join(f"{n:>8}" for n in row) for name, row in zip(STAGE_LABELS, matrix)]
        return lines


async def evaluate(conn: AsyncConnection, model: NightModel, tenant_id: uuid.UUID | None = None) -> Evaluation:
    """The model on every labelled recording (of one tenant, or of all)."""
    query = TenantRepository(conn, tenant_id).select(recordings) if tenant_id else select(recordings)
    query = query.where(_LABELLED).order_by(recordings.c.started_at, recordings.c.id)
    truth: list[int] = []
    predicted: list[int] = []
    nights = 0
    for recording in (await conn.execute(query)).mappings().all():
        repo = TenantRepository(conn, recording["tenant_id"])
        night = await load_night(repo, recording, model.version)
        labels = await _labels(repo, recording)
        labelled = [i for i, start in enumerate(night.starts) if start in labels]
        if not labelled:
            continue
        # Inference is CPU work: off the event loop (an admin route runs this too).
        stages = (await anyio.to_thread.run_sync(model.predict_proba, dequantize(night.codes))).argmax(axis=1)
        truth += [labels[night.starts[i]] for i in labelled]
        predicted += [int(stages[i]) for i in labelled]
        nights += 1
    return Evaluation(model.version, nights, np.array(truth, dtype=int), np.array(predicted, dtype=int))


async def _labels(repo: TenantRepository, recording: RowMapping) -> dict[datetime, int]:
    query = repo.select(stage_labels, stage_labels.c.start_time, stage_labels.c.stage).where(
        stage_labels.c.device_id == recording["device_id"],
        stage_labels.c.start_time >= recording["started_at"],
        stage_labels.c.start_time < recording["window_end"],
    )
    return {row.start_time: int(row.stage) for row in await repo.conn.execute(query)}


@dataclass
class Agreement:
    """Two server versions' stored stages on the epochs both have scored."""

    versions: tuple[str, str]
    first: np.ndarray
    second: np.ndarray

    def summary(self) -> ActiveAgreement:
        s = scores(self.first, self.second) if len(self.first) else {}
        return ActiveAgreement(self.versions[1], len(self.first), s.get("acc4"), s.get("kappa4"))

    def line(self) -> str:
        if not len(self.first):
            return f"{self.versions[0]} and {self.versions[1]}: no epoch scored by both yet (see `models shadow`)"
        s = scores(self.first, self.second)
        return (
            f"{self.versions[0]} agrees with {self.versions[1]} on {s['acc4']:.3f} of {len(self.first)} epochs "
            f"both scored, kappa4={s['kappa4']:.3f}"
        )


async def agreement(conn: AsyncConnection, first: str, second: str, tenant_id: uuid.UUID | None = None) -> Agreement:
    other = predictions.alias("other")
    columns = (predictions.c.stage, other.c.stage)
    query = TenantRepository(conn, tenant_id).select(predictions, *columns) if tenant_id else select(*columns)
    query = query.join(
        other,
        (other.c.device_id == predictions.c.device_id)
        & (other.c.seq == predictions.c.seq)
        & (other.c.start_time == predictions.c.start_time),
    ).where(predictions.c.model_version == first, other.c.model_version == second)
    rows = (await conn.execute(query)).all()
    return Agreement(
        (first, second), np.array([r[0] for r in rows], dtype=int), np.array([r[1] for r in rows], dtype=int)
    )
