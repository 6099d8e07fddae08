from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec


class DriftReportOut(msgspec.Struct):
    device_id: uuid.UUID
    window_start: datetime
    window_end: datetime
    server_model_version: str
    epochs: int
    edge_agreement: float | None
    edge_kappa: float | None
    prediction_psi: float | None
    max_feature_psi: float | None
    level: str
    details: dict[str, Any]
    created_at: datetime
