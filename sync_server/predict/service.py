from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio.to_thread
import numpy as np
from sqlalchemy import and_
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from noctis_contract.features import FEATURE_NAMES, dequantize, quantize, to_array, validate_epoch
from noctis_contract.night_model import NightModel
from noctis_contract.stages import Stage
from sync_server.db import epochs, feature_values, insert_ignoring_conflicts, predictions, recordings, transaction
from sync_server.errors import InvalidInput, ServiceUnavailable
from sync_server.faults import INJECTOR, InjectedFault
from sync_server.metrics import INFERENCE_SECONDS, PREDICTIONS_SERVED
from sync_server.predict.schemas import (
    EpochPrediction,
    PredictRequest,
    PredictResponse,
    RescoreResult,
    StageProbabilities,
)
from sync_server.recordings.service import epochs_in_window
from sync_server.tenancy import TenantRepository

PROBABILITY_COLUMNS = ("p_wake", "p_light", "p_deep", "p_rem")  # in Stage order


@dataclass
class ScoredNight:
    """A recording's epochs in time order with the server model's stage probabilities."""

    model_version: str
    seqs: list[int]
    starts: list[datetime]
    probabilities: np.ndarray  # (epochs, 4)
    stored: int  # prediction rows this call added

    def stages(self) -> list[int]:
        return self.probabilities.argmax(axis=1).tolist()  # type: ignore[no-any-return]


async def predict(
    repo: TenantRepository, engine: AsyncEngine, model: NightModel | None, request: PredictRequest
) -> PredictResponse:
    model = loaded(model)
    if (request.recording_id is None) == (request.epochs is None):
        raise InvalidInput("give either recording_id or epochs, not both and not neither")
    for bound in (request.start, request.end):
        if bound is not None and bound.tzinfo is None:
            raise InvalidInput("start and end need a UTC offset")
    if request.epochs is not None:
        for i, epoch in enumerate(request.epochs):
            if reason := validate_epoch(epoch.features):
                raise InvalidInput(f"epochs[{i}]: {reason}")
        # At the precision epochs are stored in: a night scores the same inline or stored.
        night = dequantize(quantize(to_array([e.features for e in request.epochs])))
        probabilities = await score(model, night)
        seqs: list[int | None] = [e.seq for e in request.epochs]
        starts: list[datetime | None] = [e.start for e in request.epochs]
    else:
        assert request.recording_id is not None
        # The whole night is scored (the model reads each epoch in the night's context),
        # then cut to the range asked for.
        scored = await scored_night(repo, engine, model, request.recording_id)
        keep = [
            i
            for i, start in enumerate(scored.starts)
            if (request.start is None or start >= request.start) and (request.end is None or start < request.end)
        ]
        probabilities = scored.probabilities[keep]
        seqs, starts = [scored.seqs[i] for i in keep], [scored.starts[i] for i in keep]
    return PredictResponse(
        model_version=model.version,
        epochs=[_epoch_prediction(seq, start, p) for seq, start, p in zip(seqs, starts, probabilities.tolist())],
    )


async def score(model: NightModel, night: np.ndarray) -> np.ndarray:
    started = time.perf_counter()
    try:
        await INJECTOR.apply("model")
    except InjectedFault as exc:
        raise ServiceUnavailable("the server model is unavailable (an injected fault); retry later") from exc
    # Inference is CPU work: off the event loop, so other requests keep flowing.
    probabilities = await anyio.to_thread.run_sync(model.predict_proba, night)
    INFERENCE_SECONDS.observe(time.perf_counter() - started)
    PREDICTIONS_SERVED.labels(model.version).inc(len(night))
    return probabilities


async def scored_night(
    repo: TenantRepository, engine: AsyncEngine, model: NightModel, recording_id: uuid.UUID, keep: bool = False
) -> ScoredNight:
    """The model's probabilities for every epoch of a recording: the stored ones when this
    model version has scored the whole night before, else scored now. Scores are stored
    once the night has ended (an open night's change as it grows), or when keep asks."""
    recording = await repo.get(recordings, recording_id, "recording")
    rows = await _load_night(repo, recording, model.version)
    seqs, starts = [row[0] for row in rows], [row[1] for row in rows]
    first_probability = 2 + len(FEATURE_NAMES)
    if rows and all(row[first_probability] is not None for row in rows):
        stored = np.array([row[first_probability:] for row in rows], dtype=np.float64)
        PREDICTIONS_SERVED.labels(model.version).inc(len(rows))
        return ScoredNight(model.version, seqs, starts, stored, stored=0)
    probabilities = await score(model, feature_values(rows, first=2)) if rows else np.zeros((0, 4))
    added = 0
    ended = recording["ended_at"] is not None and recording["ended_at"] <= datetime.now(UTC)
    if rows and (ended or keep):
        added = await _store(engine, repo.tenant_id, recording["device_id"], model.version, seqs, starts, probabilities)
    return ScoredNight(model.version, seqs, starts, probabilities, stored=added)


async def _load_night(repo: TenantRepository, recording: RowMapping, model_version: str) -> list[tuple]:  # type: ignore[type-arg]
    """One query: the night's epochs in time order, their feature codes and this model's
    stored probabilities (None where it has not scored the epoch)."""
    scored = and_(
        predictions.c.device_id == epochs.c.device_id,
        predictions.c.seq == epochs.c.seq,
        predictions.c.start_time == epochs.c.start_time,
        predictions.c.model_version == model_version,
        predictions.c.start_time >= recording["started_at"],  # the night's chunks only
    )
    query = (
        epochs_in_window(
            repo,
            recording,
            epochs.c.seq,
            epochs.c.start_time,
            *(epochs.c[name] for name in FEATURE_NAMES),
            *(predictions.c[name] for name in PROBABILITY_COLUMNS),
        )
        .outerjoin(predictions, scored)
        .order_by(epochs.c.start_time, epochs.c.seq)
    )
    return [tuple(row) for row in await repo.conn.execute(query)]


async def _store(
    engine: AsyncEngine,
    tenant_id: uuid.UUID,
    device_id: uuid.UUID,
    model_version: str,
    seqs: list[int],
    starts: list[datetime],
    probabilities: np.ndarray,
) -> int:
    """Keep a night's scores under their model version, in a write transaction of their
    own: the request's reads never hold SQLite's write lock through inference."""
    columns = {
        "seq": seqs,
        "start_time": starts,
        "stage": probabilities.argmax(axis=1).tolist(),
        **{name: probabilities[:, i].tolist() for i, name in enumerate(PROBABILITY_COLUMNS)},
    }
    same = {"device_id": device_id, "tenant_id": tenant_id, "model_version": model_version}
    async with transaction(engine, tenant_id) as conn:
        return await insert_ignoring_conflicts(conn, predictions, same, columns)


async def rescore_recording(
    repo: TenantRepository, engine: AsyncEngine, model: NightModel | None, recording_id: uuid.UUID
) -> RescoreResult:
    """Score a whole recording with the active model and keep the result in `predictions`.

    Idempotent per (epoch, model version): scoring again with the same model adds nothing,
    a new model version adds its own rows beside the old ones (drift compares them).
    """
    scored = await scored_night(repo, engine, loaded(model), recording_id, keep=True)
    return RescoreResult(
        recording_id=recording_id, model_version=scored.model_version, epochs=len(scored.seqs), stored=scored.stored
    )


def loaded(model: NightModel | None) -> NightModel:
    """The server model, or 503 while none is loaded."""
    if model is None:
        raise ServiceUnavailable("no server model is loaded")
    return model


def _epoch_prediction(seq: int | None, start: datetime | None, p: list[float]) -> EpochPrediction:
    stage = Stage(max(range(len(p)), key=p.__getitem__))
    return EpochPrediction(
        stage=stage.label,
        stage_id=int(stage),
        seq=seq,
        start=start,
        probabilities=StageProbabilities(*(round(x, 6) for x in p)),
    )
