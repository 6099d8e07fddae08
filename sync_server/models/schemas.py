from __future__ import annotations

import msgspec


class LabelScores(msgspec.Struct):
    """A server model against the stages people scored on the tenant's labelled nights."""

    nights: int
    epochs: int
    kappa4: float | None
    acc4: float | None
    recall: dict[str, float]  # per stage: the share of its labelled epochs the model found
    confusion: list[list[int]]  # rows: the labels (wake, light, deep, rem); columns: the model


class ActiveAgreement(msgspec.Struct):
    """The model's stored stages against the active model's, where both scored an epoch."""

    active_version: str | None
    epochs: int
    agreement: float | None
    kappa4: float | None


class ModelEvaluation(msgspec.Struct):
    version: str
    labels: LabelScores
    active: ActiveAgreement
