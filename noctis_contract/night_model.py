"""The server model's runtime: whole-night context features and a softmax classifier.

Training (model_export), evaluation and serving (sync_server) all call this one
featurizer, so the model cannot be served on inputs shaped differently from the ones
it was trained on. Parameters are plain arrays loaded from an ``.npz`` with
``allow_pickle=False``: loading a model never executes code.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noctis_contract.features import N_FEATURES
from noctis_contract.stages import N_STAGES

MODEL_FORMAT = "noctis-context-softmax-v1"
# Centred windows in epochs: 2.5 and 10.5 minutes either side see the whole night's
# structure around an epoch (the server is not causal; the edge model is).
CONTEXT_WINDOWS = (5, 21)


def _centred_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over a centred window, shrinking at the night's edges. values: (n, f)."""
    n = values.shape[0]
    half = window // 2
    cumsum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    idx = np.arange(n)
    lo, hi = np.clip(idx - half, 0, n), np.clip(idx + half + 1, 0, n)
    return (cumsum[hi] - cumsum[lo]) / (hi - lo)[:, None]


def context_features(night: np.ndarray, fill_values: np.ndarray) -> np.ndarray:
    """One night's epochs (n, 15) with NaN for missing, in time order, to (n, 6*15)."""
    night = np.asarray(night, dtype=np.float64).reshape(-1, N_FEATURES)
    missing = np.isnan(night)
    filled = np.where(missing, fill_values, night)
    # Relative to the night's own median: a subject's resting heart rate varies far more
    # between people than between their sleep stages.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected
        observed_median = np.nanmedian(night, axis=0) if len(night) else fill_values
    night_median = np.where(np.isnan(observed_median), fill_values, observed_median)
    parts = [filled, missing.astype(np.float64), filled - night_median]
    for window in CONTEXT_WINDOWS:
        parts.append(_centred_mean(filled, window))
    wide = CONTEXT_WINDOWS[-1]
    mean_sq = _centred_mean(filled**2, wide)
    parts.append(np.sqrt(np.maximum(mean_sq - _centred_mean(filled, wide) ** 2, 0.0)))
    return np.hstack(parts)


@dataclass(frozen=True)
class NightModel:
    version: str
    fill_values: np.ndarray  # (15,) training medians for missing inputs
    mean: np.ndarray  # (d,) standardisation
    scale: np.ndarray  # (d,)
    weights: np.ndarray  # (d, 4)
    bias: np.ndarray  # (4,)

    def predict_proba(self, night: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 4) for one night's epochs in time order."""
        if len(night) == 0:
            return np.zeros((0, N_STAGES))
        z = (context_features(night, self.fill_values) - self.mean) / self.scale
        logits = z @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "fill_values": self.fill_values,
            "mean": self.mean,
            "scale": self.scale,
            "weights": self.weights,
            "bias": self.bias,
        }


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_night_model(model_dir: Path) -> tuple[NightModel, dict[str, object]]:
    """Load a registry directory after checking every file against the manifest's hash."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    if manifest.get("format") != MODEL_FORMAT:
        raise ValueError(f"{model_dir}: format {manifest.get('format')!r} is not {MODEL_FORMAT}")
    for name, expected in manifest["files"].items():
        actual = sha256_file(model_dir / name)
        if actual != expected:
            raise ValueError(f"{model_dir / name}: sha256 {actual} does not match manifest {expected}")
    with np.load(model_dir / "weights.npz", allow_pickle=False) as arrays:
        model = NightModel(
            version=str(manifest["version"]),
            **{k: arrays[k] for k in ("fill_values", "mean", "scale", "weights", "bias")},
        )
    return model, manifest
