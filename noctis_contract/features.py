"""Feature schema v1: the 15 numbers that describe one 30-second epoch.

Each feature has a valid range (values outside it are a sensor or firmware fault and
are rejected) and a quantization range (the span the 1-byte code covers; values inside
the valid range but outside the quantization range saturate). Missing is first-class:
``None``/NaN in Python, code 255 on the wire and in flash, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCHEMA_VERSION = 1
EPOCH_SECONDS = 30
MISSING_CODE = 255
MAX_CODE = 254  # 0..254 are values, 255 is missing


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    unit: str
    valid_min: float
    valid_max: float
    quant_min: float
    quant_max: float
    description: str
    source: str  # radar | accelerometer | clock: the sensor that measures it on the device

    @property
    def step(self) -> float:
        """The width of one quantization code, in the feature's unit."""
        return (self.quant_max - self.quant_min) / MAX_CODE


FEATURES: tuple[Feature, ...] = (
    # radar: cardiac
    Feature("hr_mean", "bpm", 20, 220, 30, 130, "heart rate, mean over the epoch", "radar"),
    Feature("hr_std", "bpm", 0, 80, 0, 20, "heart rate, standard deviation over the epoch", "radar"),
    Feature("ibi_rmssd", "ms", 0, 1000, 0, 200, "inter-beat variability (RMSSD of beat intervals)", "radar"),
    # radar: respiration
    Feature("resp_rate_mean", "breaths/min", 0, 60, 4, 40, "respiration rate, mean", "radar"),
    Feature("resp_rate_std", "breaths/min", 0, 30, 0, 10, "respiration rate, standard deviation", "radar"),
    Feature("resp_amplitude", "mm", 0, 50, 0, 20, "chest displacement amplitude", "radar"),
    Feature("resp_regularity", "1", 0, 1, 0, 1, "breath-to-breath regularity, 1 = metronomic", "radar"),
    # radar: scene
    Feature("presence_ratio", "1", 0, 1, 0, 1, "fraction of the epoch a person was detected", "radar"),
    Feature("target_distance", "m", 0, 6, 0, 3, "mean distance from the radar to the target", "radar"),
    Feature("radar_motion", "%", 0, 100, 0, 100, "radar body-motion energy, 0-100", "radar"),
    # accelerometer on the bed frame
    Feature("activity_count", "counts", 0, 10000, 0, 300, "activity counts summed over the epoch", "accelerometer"),
    Feature("accel_std", "mg", 0, 2000, 0, 100, "acceleration magnitude, standard deviation", "accelerometer"),
    Feature("accel_peak", "mg", 0, 4000, 0, 500, "peak acceleration magnitude above gravity", "accelerometer"),
    Feature("movement_events", "count", 0, 100, 0, 30, "movements above threshold in the epoch", "accelerometer"),
    # time
    Feature("hours_since_start", "h", 0, 48, 0, 16, "hours since the recording started", "clock"),
)

N_FEATURES = len(FEATURES)


def indices(source: str) -> list[int]:
    """Positions of the features one sensor measures."""
    return [i for i, f in enumerate(FEATURES) if f.source == source]


FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
assert N_FEATURES == 15, "schema v1 has exactly 15 features"

_QMIN = np.array([f.quant_min for f in FEATURES], dtype=np.float64)
_QMAX = np.array([f.quant_max for f in FEATURES], dtype=np.float64)


# The quantiles a model manifest records per feature (its training distribution), and
# the bins drift statistics compare today's values against: one list for both.
REFERENCE_QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


def validate_epoch(values: Sequence[float | None]) -> str | None:
    """Why this feature vector cannot be stored, or None when it can."""
    if len(values) != N_FEATURES:
        return f"expected {N_FEATURES} features, got {len(values)}"
    for feature, value in zip(FEATURES, values):
        if value is None:
            continue
        if not math.isfinite(value):
            return f"{feature.name} is not a finite number (use null for missing)"
        if not feature.valid_min <= value <= feature.valid_max:
            return (
                f"{feature.name}={value:g} is outside its valid range "
                f"[{feature.valid_min:g}, {feature.valid_max:g}] {feature.unit}"
            )
    return None


def night_hours(start: np.ndarray | int, night_start: int) -> np.ndarray:
    """Feature 14, hours_since_start: hours from the night's start (Unix seconds) to the
    epoch's start. One definition for training, the simulator and the firmware
    (edge_firmware/include/noctis/codec.h; the device's night rule is in device.h)."""
    return np.maximum(np.asarray(start, dtype=np.float64) - night_start, 0.0) / 3600.0


def quantize(values: np.ndarray) -> np.ndarray:
    """Float features (NaN = missing), shape (..., 15), to uint8 codes."""
    values = np.asarray(values, dtype=np.float64)
    scaled = (values - _QMIN) / (_QMAX - _QMIN) * MAX_CODE
    # Round half away from zero, like the firmware's lroundf, so both sides agree bit for bit.
    codes = np.floor(np.clip(scaled, 0, MAX_CODE) + 0.5)
    codes = np.where(np.isnan(values), MISSING_CODE, codes)
    return codes.astype(np.uint8)


def night_so_far(codes: np.ndarray) -> np.ndarray:
    """(n, 15) codes of one night, in time order, to (n, 15): for each epoch the mean code
    of every value observed since the night began, that epoch included (rounded half up;
    MISSING_CODE while a feature has not been seen). The edge model reads each epoch
    against it: the night's own level, as the server model reads the night's median. The
    firmware keeps a sum and a count per feature (edge_firmware/include/noctis/codec.h)."""
    codes = np.asarray(codes, dtype=np.uint8).reshape(-1, N_FEATURES)
    seen = codes != MISSING_CODE
    sums = np.cumsum(np.where(seen, codes, 0).astype(np.int64), axis=0)
    counts = np.cumsum(seen, axis=0)
    means = (sums + counts // 2) // np.maximum(counts, 1)
    return np.where(counts > 0, means, MISSING_CODE).astype(np.uint8)


def dequantize(codes: np.ndarray) -> np.ndarray:
    """uint8 codes, shape (..., 15), back to float features with NaN for missing."""
    codes = np.asarray(codes, dtype=np.uint8)
    values = _QMIN + codes.astype(np.float64) * (_QMAX - _QMIN) / MAX_CODE
    return np.where(codes == MISSING_CODE, np.nan, values)


def as_sent(values: np.ndarray) -> np.ndarray:
    """Float features as the server receives them from a device: through the contract's
    codes, clipped to each feature's quantization range at one code step's resolution.
    Server models train and are measured on these, since it is what they serve."""
    return dequantize(quantize(values))


def to_array(rows: Sequence[Sequence[float | None]]) -> np.ndarray:
    """Feature rows with ``None`` for missing to a float array with NaN."""
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64).reshape(
        len(rows), N_FEATURES
    )
