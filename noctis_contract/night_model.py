"""The server model's runtime: whole-night context features, a small MLP, and
forward-backward smoothing over a stage-transition matrix.

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

from noctis_contract.features import FEATURE_NAMES, N_FEATURES
from noctis_contract.stages import N_STAGES

MODEL_FORMAT = "noctis-context-mlp-v2"
# Centred windows in epochs (2.5, 10.5 and 30.5 minutes either side): the server sees
# the night's structure around an epoch, past and future (the edge model cannot).
CONTEXT_WINDOWS = (5, 21, 61)
# Heavy-tailed movement features are compared on a log scale.
LOG_FEATURES = np.array(
    [name in ("activity_count", "accel_std", "accel_peak", "radar_motion", "movement_events") for name in FEATURE_NAMES]
)


def _centred_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean over a centred window, shrinking at the night's edges. values: (n, f)."""
    n = values.shape[0]
    half = window // 2
    cumsum = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    idx = np.arange(n)
    lo, hi = np.clip(idx - half, 0, n), np.clip(idx + half + 1, 0, n)
    means: np.ndarray = (cumsum[hi] - cumsum[lo]) / (hi - lo)[:, None]
    return means


FEATURE_SETS = ("context-v2", "context-v3")
_ACTIVITY = FEATURE_NAMES.index("activity_count")
_HEART_RATE = FEATURE_NAMES.index("hr_mean")
MOVEMENT_HORIZON = 120  # epochs: "no movement for an hour or more" is one value


def _epochs_since(events: np.ndarray) -> np.ndarray:
    """For each epoch, epochs since the last event (capped at MOVEMENT_HORIZON)."""
    index = np.arange(len(events))
    last = np.maximum.accumulate(np.where(events, index, -MOVEMENT_HORIZON - 1))
    return np.minimum(index - last, MOVEMENT_HORIZON).astype(np.float64)


def context_features(night: np.ndarray, fill_values: np.ndarray, feature_set: str = "context-v2") -> np.ndarray:
    """One night's epochs (n, 15) with NaN for missing, in time order, to a design matrix.

    context-v2: levels, missingness, night-relative levels, centred means and spreads.
    context-v3: v2 plus time since and until movement, the heart rate's rank within the
    night, hour-long means of heart rate and activity, and the position in the night
    (measured better on held-out subjects: see server-3's card).
    """
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}")
    night = np.asarray(night, dtype=np.float64).reshape(-1, N_FEATURES)
    night = np.where(LOG_FEATURES, np.log1p(np.maximum(night, 0)), night)
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
        mean = _centred_mean(filled, window)
        parts.append(mean - night_median)
        parts.append(np.sqrt(np.maximum(_centred_mean(filled**2, window) - mean**2, 0.0)))
    parts.append(_centred_mean(missing.astype(np.float64), CONTEXT_WINDOWS[1]))
    if feature_set == "context-v3":
        n = len(night)
        moving = np.nan_to_num(night[:, _ACTIVITY]) > 0
        parts.append(_epochs_since(moving)[:, None] / MOVEMENT_HORIZON)
        parts.append(_epochs_since(moving[::-1])[::-1][:, None] / MOVEMENT_HORIZON)
        heart = filled[:, _HEART_RATE]
        parts.append((np.argsort(np.argsort(heart, kind="stable"), kind="stable") / max(n - 1, 1))[:, None])
        parts.append(_centred_mean(filled[:, [_HEART_RATE, _ACTIVITY]], 121))
        position = np.arange(n) / max(n - 1, 1)
        parts.append(np.stack([position, position**2], axis=1))
    return np.hstack(parts)


def forward_backward(likelihood: np.ndarray, transitions: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Posterior stage probabilities (n, 4) of an HMM with per-epoch scaled likelihoods."""
    n = len(likelihood)
    alpha = np.empty_like(likelihood)
    beta = np.empty_like(likelihood)
    alpha[0] = initial * likelihood[0]
    alpha[0] /= alpha[0].sum()
    for t in range(1, n):
        alpha[t] = (alpha[t - 1] @ transitions) * likelihood[t]
        alpha[t] /= alpha[t].sum()
    beta[-1] = 1.0
    for t in range(n - 2, -1, -1):
        beta[t] = transitions @ (likelihood[t + 1] * beta[t + 1])
        beta[t] /= beta[t].sum()
    posterior = alpha * beta
    normalised: np.ndarray = posterior / posterior.sum(axis=1, keepdims=True)
    return normalised


@dataclass(frozen=True)
class NightModel:
    version: str
    fill_values: np.ndarray  # (15,) training medians for missing inputs
    mean: np.ndarray  # (d,) standardisation
    scale: np.ndarray  # (d,)
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # ReLU between layers, softmax at the end
    prior: np.ndarray  # (4,) training stage frequencies
    transitions: np.ndarray | None  # (4, 4) row-stochastic; None: no smoothing
    feature_set: str = "context-v2"

    def frame_proba(self, night: np.ndarray) -> np.ndarray:
        """Per-epoch probabilities from the network alone, before smoothing."""
        z = (context_features(night, self.fill_values, self.feature_set) - self.mean) / self.scale
        for i, (weights, bias) in enumerate(self.layers):
            z = z @ weights + bias
            if i < len(self.layers) - 1:
                z = np.maximum(z, 0.0)
        z -= z.max(axis=1, keepdims=True)
        exp = np.exp(z)
        probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return probabilities

    def predict_proba(self, night: np.ndarray) -> np.ndarray:
        """Class probabilities (n, 4) for one night's epochs in time order."""
        if len(night) == 0:
            return np.zeros((0, N_STAGES))
        frame = self.frame_proba(night)
        if self.transitions is None:
            return frame
        # Hybrid HMM: the network's posterior over the prior is a scaled likelihood.
        return forward_backward(frame / self.prior, self.transitions, self.prior)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {"fill_values": self.fill_values, "mean": self.mean, "scale": self.scale, "prior": self.prior}
        for i, (weights, bias) in enumerate(self.layers):
            arrays[f"w{i}"], arrays[f"b{i}"] = weights, bias
        if self.transitions is not None:
            arrays["transitions"] = self.transitions
        return arrays

    @classmethod
    def from_arrays(cls, version: str, arrays: dict[str, np.ndarray], feature_set: str = "context-v2") -> NightModel:
        depth = sum(1 for key in arrays if key.startswith("w"))
        return cls(
            version=version,
            fill_values=arrays["fill_values"],
            mean=arrays["mean"],
            scale=arrays["scale"],
            layers=tuple((arrays[f"w{i}"], arrays[f"b{i}"]) for i in range(depth)),
            prior=arrays["prior"],
            transitions=arrays.get("transitions"),
            feature_set=feature_set,
        )


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
    with np.load(model_dir / "weights.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    feature_set = str(manifest.get("feature_set", "context-v2"))
    return NightModel.from_arrays(str(manifest["version"]), arrays, feature_set), manifest
