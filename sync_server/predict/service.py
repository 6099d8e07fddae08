from __future__ import annotations

import time
import uuid

import anyio.to_thread
import numpy as np

from noctis_contract.features import FEATURE_NAMES, dequantize, quantize, to_array, validate_epoch
from noctis_contract.night_model import NightModel
from noctis_contract.stages import Stage
from sync_server.db import epochs, feature_values, insert_ignoring_conflicts, predictions, recordings
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


async def predict(repo: TenantRepository, model: NightModel | None, request: PredictRequest) -> PredictResponse:
    if model is None:
        raise ServiceUnavailable("no server model is loaded")
    if (request.recording_id is None) == (request.epochs is None):
        raise InvalidInput("give either recording_id or epochs, not both and not neither")
    if request.epochs is not None:
        for i, epoch in enumerate(request.epochs):
            if reason := validate_epoch(epoch.features):
                raise InvalidInput(f"epochs[{i}]: {reason}")
        # At the precision epochs are stored in: a night scores the same inline or stored.
        night = dequantize(quantize(to_array([e.features for e in request.epochs])))
        keys = [(e.seq, e.start) for e in request.epochs]
    else:
        _, night, keys = await _load_recording(repo, request)
    probabilities = await score(model, night)
    return PredictResponse(
        model_version=model.version,
        epochs=[_epoch_prediction(seq, start, p) for (seq, start), p in zip(keys, probabilities)],
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


async def rescore_recording(repo: TenantRepository, model: NightModel | None, recording_id: uuid.UUID) -> RescoreResult:
    """Score a whole recording with the active model and keep the result in `predictions`.

    Idempotent per (epoch, model version): scoring again with the same model adds nothing,
    a new model version adds its own rows beside the old ones (drift compares them).
    """
    if model is None:
        raise ServiceUnavailable("no server model is loaded")
    recording, night, keys = await _load_recording(repo, PredictRequest(recording_id=recording_id))
    if not keys:
        return RescoreResult(recording_id=recording_id, model_version=model.version, epochs=0, stored=0)
    probabilities = await score(model, night)
    rows = [
        {
            "device_id": recording["device_id"],
            "seq": seq,
            "start_time": start,
            "model_version": model.version,
            "tenant_id": repo.tenant_id,
            "stage": int(p.argmax()),
            "p_wake": float(p[0]),
            "p_light": float(p[1]),
            "p_deep": float(p[2]),
            "p_rem": float(p[3]),
        }
        for (seq, start), p in zip(keys, probabilities)
    ]
    stored = await insert_ignoring_conflicts(repo.conn, predictions, rows)
    return RescoreResult(recording_id=recording_id, model_version=model.version, epochs=len(keys), stored=stored)


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
    night = feature_values(rows, first=2)
    return recording, night, [(row.seq, row.start_time) for row in rows]


def _epoch_prediction(seq, start, p: np.ndarray) -> EpochPrediction:  # type: ignore[no-untyped-def]
    stage = Stage(int(p.argmax()))
    return EpochPrediction(
        stage=stage.label,
        stage_id=int(stage),
        seq=seq,
        start=start,
        probabilities=StageProbabilities(*(round(float(x), 6) for x in p)),
    )


async def recording_stages(
    repo: TenantRepository, model: NightModel | None, recording_id: uuid.UUID
) -> tuple[str, list[int]]:
    """The active model's stage for every stored epoch of a recording, in time order."""
    if model is None:
        raise ServiceUnavailable("no server model is loaded")
    _, night, _ = await _load_recording(repo, PredictRequest(recording_id=recording_id))
    probabilities = await score(model, night)
    return model.version, [int(p.argmax()) for p in probabilities]
