from __future__ import annotations

import time

import anyio.to_thread
import numpy as np

from noctis_contract.features import FEATURE_NAMES, to_array, validate_epoch
from noctis_contract.night_model import NightModel
from noctis_contract.stages import Stage
from sync_server.db import epochs, recordings
from sync_server.errors import InvalidInput, ServiceUnavailable
from sync_server.metrics import INFERENCE_SECONDS, PREDICTIONS_SERVED
from sync_server.predict.schemas import EpochPrediction, PredictRequest, PredictResponse, StageProbabilities
from sync_server.recordings.service import epochs_in_window
from sync_server.tenancy import TenantRepository


async def predict(repo: TenantRepository, model: NightModel | None, request: PredictRequest) -> PredictResponse:
    if model is None:
        raise ServiceUnavailable("no server model is loaded")
    if (request.recording_id is None) == (request.epochs is None):
        raise InvalidInput("give either recording_id or epochs, not both and not neither")
    if request.epochs is not None:
        for i, epoch in enumerate(request.epochs):
            if reason := validate_epoch(epoch.features):
                raise InvalidInput(f"epochs[{i}]: {reason}")
        night = to_array([e.features for e in request.epochs])
        keys = [(e.seq, e.start) for e in request.epochs]
    else:
        night, keys = await _load_recording(repo, request)
    started = time.perf_counter()
    # Inference is CPU work: off the event loop, so other requests keep flowing.
    probabilities = await anyio.to_thread.run_sync(model.predict_proba, night)
    INFERENCE_SECONDS.observe(time.perf_counter() - started)
    PREDICTIONS_SERVED.labels(model.version).inc(len(keys))
    return PredictResponse(
        model_version=model.version,
        epochs=[_epoch_prediction(seq, start, p) for (seq, start), p in zip(keys, probabilities)],
    )


async def _load_recording(repo: TenantRepository, request: PredictRequest):  # type: ignore[no-untyped-def]
    assert request.recording_id is not None
    recording = await repo.get(recordings, request.recording_id, "recording")
    query = epochs_in_window(
        repo, recording, epochs.c.seq, epochs.c.start_time, *(epochs.c[name] for name in FEATURE_NAMES)
    )
    for bound in (request.start, request.end):
        if bound is not None and bound.tzinfo is None:
            raise InvalidInput("start and end need a UTC offset")
    if request.start is not None:
        query = query.where(epochs.c.start_time >= request.start)
    if request.end is not None:
        query = query.where(epochs.c.start_time < request.end)
    rows = (await repo.conn.execute(query.order_by(epochs.c.start_time, epochs.c.seq))).all()
    night = to_array([row[2:] for row in rows])
    return night, [(row.seq, row.start_time) for row in rows]


def _epoch_prediction(seq, start, p: np.ndarray) -> EpochPrediction:  # type: ignore[no-untyped-def]
    stage = Stage(int(p.argmax()))
    return EpochPrediction(
        stage=stage.label,
        stage_id=int(stage),
        seq=seq,
        start=start,
        probabilities=StageProbabilities(*(round(float(x), 6) for x in p)),
    )
