from __future__ import annotations

import gzip
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import msgspec
import numpy as np
from litestar import MediaType, Response
from litestar.response.base import ASGIResponse
from sqlalchemy import and_, func
from sqlalchemy.dialects.postgresql import aggregate_order_by, array
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.sqltypes import NullType

from noctis_contract.features import FEATURE_NAMES, N_FEATURES, as_sent, dequantize, to_array, validate_epoch
from noctis_contract.night_model import NightModel
from noctis_contract.stages import Stage
from sync_server.changes import Kept, Token
from sync_server.db import epochs, insert_ignoring_conflicts, predictions, recordings, transaction
from sync_server.errors import InvalidInput, ResourceNotFound, ServiceUnavailable
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


VARY = {"vary": "accept-encoding"}  # the same request may be answered compressed or not


class BuiltOnce(Response[bytes]):
    """A JSON response whose ASGI form is built once and then sent as it is: a kept
    night is asked for again and again, and Litestar would build its headers anew each
    time (a tenth of the CPU of the answer)."""

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        super().__init__(body, media_type=MediaType.JSON, headers=headers)
        self.built = ASGIResponse(body=body, media_type=MediaType.JSON, headers=headers)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        return self.built


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer to /v1/predict, encoded once: JSON, and gzip too when it is kept (a
    stored night asked again and again is compressed once, not on every request)."""

    plain: BuiltOnce
    gzipped: BuiltOnce | None
    size: int  # bytes held

    @classmethod
    def of(cls, body: bytes, compress: bool = False) -> Answer:
        # A whole night compresses about 8x (level 9: a few ms, once per kept night).
        gzipped = gzip.compress(body, compresslevel=9, mtime=0) if compress else None
        return cls(
            BuiltOnce(body, VARY),
            None if gzipped is None else BuiltOnce(gzipped, {**VARY, "content-encoding": "gzip"}),
            len(body) + len(gzipped or b""),
        )


@dataclass
class ScoredNight:
    """A recording's epochs in time order with the server model's stage probabilities."""

    model_version: str
    seqs: list[int]
    starts: list[datetime]
    probabilities: np.ndarray  # (epochs, 4)
    stored: int  # prediction rows this call added
    kept: bool  # every epoch's scores are stored: they change only with a new epoch (an upload)

    def stages(self) -> list[int]:
        return self.probabilities.argmax(axis=1).tolist()  # type: ignore[no-any-return]


async def predict(
    engine: AsyncEngine, tenant_id: uuid.UUID, model: NightModel | None, request: PredictRequest, kept: Kept[Answer]
) -> Answer:
    """The answer to /v1/predict (a PredictResponse). A stored night's answer is kept
    until its recording or device changes: asked again, it costs no database round trip."""
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
        night = as_sent(to_array([e.features for e in request.epochs]))
        probabilities = await score(model, night)
        seqs = [e.seq for e in request.epochs]
        return Answer.of(_encode(model.version, seqs, [e.start for e in request.epochs], probabilities))

    assert request.recording_id is not None
    key = (tenant_id, request.recording_id, model.version, request.start, request.end)
    if (answer := kept.get(key)) is not None:
        return answer
    recording_id, start, end = request.recording_id, request.start, request.end

    async def stored_answer(since: Token | None) -> Answer:
        async with transaction(engine, tenant_id, writes=False) as conn:
            repo = TenantRepository(conn, tenant_id)
            recording = await recording_row(repo, recording_id)
            # The whole night is scored (the model reads each epoch in the night's
            # context), then cut to the range asked for.
            scored = await scored_night(repo, engine, model, recording)
        keep = [i for i, at in enumerate(scored.starts) if (start is None or at >= start) and (end is None or at < end)]
        body = _encode(
            model.version, [scored.seqs[i] for i in keep], [scored.starts[i] for i in keep], scored.probabilities[keep]
        )
        if not scored.kept:
            return Answer.of(body)
        answer = Answer.of(body, compress=True)
        # A device's upload changes its row, so its new epochs end the kept answer.
        kept.put(key, answer, [recording["id"], recording["device_id"]], since)
        return answer

    return await kept.once(key, stored_answer)


async def recording_row(repo: TenantRepository, recording_id: uuid.UUID) -> RowMapping:
    """The recording's id, device and window."""
    columns = ("id", "device_id", "started_at", "ended_at", "window_end")
    query = repo.select(recordings, *(recordings.c[name] for name in columns)).where(recordings.c.id == recording_id)
    row: RowMapping | None = (await repo.conn.execute(query)).mappings().first()
    if row is None:
        raise ResourceNotFound(f"recording {recording_id} not found")
    return row


def _encode(model_version: str, seqs: list[Any], starts: list[Any], probabilities: np.ndarray) -> bytes:
    response = PredictResponse(model_version=model_version, epochs=_epoch_predictions(seqs, starts, probabilities))
    return msgspec.json.encode(response)


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
    repo: TenantRepository, engine: AsyncEngine, model: NightModel, recording: RowMapping, keep: bool = False
) -> ScoredNight:
    """The model's probabilities for every epoch of a recording (a recording_row): the
    stored ones when this model version has scored the whole night before, else scored
    now. Scores are stored once the night has ended (an open night's change as it grows),
    or when keep asks."""
    night = await load_night(repo, recording, model.version)
    if night.seqs and not np.isnan(night.stored).any():
        return ScoredNight(model.version, night.seqs, night.starts, night.stored, stored=0, kept=True)
    probabilities = await score(model, dequantize(night.codes)) if night.seqs else np.zeros((0, 4))
    added = 0
    ended = recording["ended_at"] is not None and recording["ended_at"] <= datetime.now(UTC)
    if night.seqs and (ended or keep):
        added = await _store(
            engine, repo.tenant_id, recording["device_id"], model.version, night.seqs, night.starts, probabilities
        )
    return ScoredNight(model.version, night.seqs, night.starts, probabilities, stored=added, kept=ended and bool(added))


async def recording_night(
    repo: TenantRepository, engine: AsyncEngine, model: NightModel | None, recording_id: uuid.UUID, keep: bool = False
) -> ScoredNight:
    """scored_night of a recording given by its id, with the active model (503 while none)."""
    return await scored_night(repo, engine, loaded(model), await recording_row(repo, recording_id), keep)


async def edge_stages(repo: TenantRepository, recording: RowMapping) -> list[int]:
    """The device's own stages for the recording's epochs in time order (-1: none)."""
    query = epochs_in_window(repo, recording, epochs.c.edge_stage).order_by(epochs.c.start_time, epochs.c.seq)
    return [-1 if stage is None else int(stage) for (stage,) in await repo.conn.execute(query)]


@dataclass
class StoredNight:
    seqs: list[int]
    starts: list[datetime]
    codes: np.ndarray  # (epochs, 15) uint8
    stored: np.ndarray  # (epochs, 4) this model's stored probabilities, NaN where none


async def load_night(repo: TenantRepository, recording: RowMapping, model_version: str) -> StoredNight:
    """One query: the night's epochs in time order, their feature codes and this model's
    stored probabilities. PostgreSQL sends each as one array (no row objects for ~1,000
    epochs); SQLite, which has no arrays, sends rows."""
    scored = and_(
        predictions.c.device_id == epochs.c.device_id,
        predictions.c.seq == epochs.c.seq,
        predictions.c.start_time == epochs.c.start_time,
        predictions.c.model_version == model_version,
        predictions.c.start_time >= recording["started_at"],  # the night's chunks only
    )
    codes = [epochs.c[name] for name in FEATURE_NAMES]
    probabilities = [predictions.c[name] for name in PROBABILITY_COLUMNS]
    order = (epochs.c.start_time, epochs.c.seq)
    if repo.conn.dialect.name == "postgresql":

        def in_order(column: Any) -> Any:
            # NullType: asyncpg's arrays as they come, without a Python pass per element.
            return func.array_agg(aggregate_order_by(column, *order), type_=NullType())

        columns = [in_order(epochs.c.seq), in_order(epochs.c.start_time), in_order(array(codes))]
        query = epochs_in_window(repo, recording, *columns, in_order(array(probabilities)))
        seqs, starts, code_rows, stored = (await repo.conn.execute(query.outerjoin(predictions, scored))).one()
        if seqs is None:
            seqs, starts, code_rows, stored = [], [], [], []
    else:
        query = epochs_in_window(repo, recording, epochs.c.seq, epochs.c.start_time, *codes, *probabilities)
        rows = (await repo.conn.execute(query.outerjoin(predictions, scored).order_by(*order))).all()
        seqs, starts = [row[0] for row in rows], [row[1] for row in rows]
        code_rows = [row[2 : 2 + N_FEATURES] for row in rows]
        stored = [row[2 + N_FEATURES :] for row in rows]
    return StoredNight(
        seqs,
        starts,
        np.array(code_rows, dtype=np.uint8).reshape(len(seqs), N_FEATURES),
        np.array(stored, dtype=np.float64).reshape(len(seqs), len(PROBABILITY_COLUMNS)),
    )


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
    scored = await recording_night(repo, engine, model, recording_id, keep=True)
    return RescoreResult(
        recording_id=recording_id, model_version=scored.model_version, epochs=len(scored.seqs), stored=scored.stored
    )


def loaded(model: NightModel | None) -> NightModel:
    """The server model, or 503 while none is loaded."""
    if model is None:
        raise ServiceUnavailable("no server model is loaded")
    return model


_LABELS = [stage.label for stage in Stage]


def _epoch_predictions(
    seqs: list[int | None], starts: list[datetime | None], probabilities: np.ndarray
) -> list[EpochPrediction]:
    stage_ids = probabilities.argmax(axis=1).tolist() if len(probabilities) else []
    rounded = np.round(probabilities, 4).tolist()
    return [
        EpochPrediction(
            stage=_LABELS[stage], stage_id=stage, seq=seq, start=start, probabilities=StageProbabilities(*p)
        )
        for seq, start, stage, p in zip(seqs, starts, stage_ids, rounded)
    ]
