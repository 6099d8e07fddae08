from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec


class InlineEpoch(msgspec.Struct, forbid_unknown_fields=True):
    features: list[float | None]
    seq: int | None = None
    start: datetime | None = None


class PredictRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Either a stored recording (optionally a time range inside it) or inline epochs
    of one night in time order."""

    recording_id: uuid.UUID | None = None
    start: datetime | None = None
    end: datetime | None = None
    epochs: Annotated[list[InlineEpoch], msgspec.Meta(max_length=2880)] | None = None


class StageProbabilities(msgspec.Struct):
    """Given to four decimals: finer than any calibration the models earn (their
    expected calibration error is a few hundredths), and a whole night's answer is a
    quarter smaller than at six."""

    wake: float
    light: float
    deep: float
    rem: float


class EpochPrediction(msgspec.Struct):
    stage: str
    stage_id: int
    probabilities: StageProbabilities
    seq: int | None = None
    start: datetime | None = None


class PredictResponse(msgspec.Struct):
    model_version: str
    epochs: list[EpochPrediction]


class RescoreResult(msgspec.Struct):
    recording_id: uuid.UUID
    model_version: str
    epochs: int  # scored
    stored: int  # new rows in predictions (0 when this model already scored them)


class SleepReport(msgspec.Struct):
    recording_id: uuid.UUID
    model_version: str
    epochs: int
    metrics: dict[str, float | int | None]  # noctis_contract.sleep_metrics.summarize
