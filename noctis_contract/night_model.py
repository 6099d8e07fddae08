"""The server model's runtime: whole-night context features, small networks whose
probabilities are averaged (a softmax layer, an MLP, or a dense layer, a bidirectional
GRU over the night and a softmax layer), and optional forward-backward smoothing over a
stage-transition matrix.

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
# Several networks averaged, a bidirectional GRU among them: servers older than it refuse it.
NETWORKS_FORMAT = "noctis-context-networks-v1"
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


FEATURE_SETS = ("context-v2", "context-v3", "context-v4")
_ACTIVITY = FEATURE_NAMES.index("activity_count")
_HEART_RATE = FEATURE_NAMES.index("hr_mean")
MOVEMENT_HORIZON = 120  # epochs: "no movement for an hour or more" is one value
# context-v4 reads the heart-rate measures as centred means over this many epochs: a
# radar's per-epoch error (3-7 bpm) falls by the square root of it, while a stage lasts
# minutes (README, "On a radar's heart rate").
HEART_RATE_MEASURES = [FEATURE_NAMES.index(name) for name in ("hr_mean", "hr_std", "ibi_rmssd")]
HEART_RATE_SMOOTHING = 5


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
    context-v4: v3 of the heart-rate measures smoothed first (smoothed_heart_rate).
    """
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"unknown feature set {feature_set!r}")
    night = np.asarray(night, dtype=np.float64).reshape(-1, N_FEATURES)
    if feature_set == "context-v4":
        night = smoothed_heart_rate(night)
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
    if feature_set in ("context-v3", "context-v4"):
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


def smoothed_heart_rate(night: np.ndarray) -> np.ndarray:
    """The night with each heart-rate measure the mean of its values seen in a centred
    HEART_RATE_SMOOTHING-epoch window (shrinking at the night's edges): missing only
    where the whole window is."""
    measures = night[:, HEART_RATE_MEASURES]
    seen = ~np.isnan(measures)
    sums = _centred_mean(np.where(seen, measures, 0.0), HEART_RATE_SMOOTHING)
    counts = _centred_mean(seen.astype(np.float64), HEART_RATE_SMOOTHING)
    out = night.copy()
    out[:, HEART_RATE_MEASURES] = np.where(counts > 0, sums / np.maximum(counts, 1e-12), np.nan)
    return out


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


_GRU_ARRAYS = ("kernel", "recurrent", "bias")  # each direction's arrays, in Keras' order


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class BiGRU:
    """Keras' bidirectional GRU over the whole night (reset_after=True; gates z, r then
    the candidate, in that order; sigmoid gates, tanh candidate): the forward states,
    then the backward ones (run over the reversed night, put back in time order), side
    by side."""

    forward: tuple[np.ndarray, np.ndarray, np.ndarray]  # kernel (d, 3u), recurrent (u, 3u), bias (2, 3u)
    backward: tuple[np.ndarray, np.ndarray, np.ndarray]

    def recurrences(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Its two directions as _gru_steps takes them: the inputs through each kernel
        (the backward one's reversed), the recurrent kernels and their biases."""
        (f_kernel, f_recurrent, f_bias), (b_kernel, b_recurrent, b_bias) = self.forward, self.backward
        inputs = np.stack([x @ f_kernel + f_bias[0], (x @ b_kernel + b_bias[0])[::-1]])  # (2, n, 3u)
        recurrent = np.stack([f_recurrent, b_recurrent])  # (2, u, 3u)
        return inputs, recurrent, np.stack([f_bias[1], b_bias[1]])[:, None, :]  # bias (2, 1, 3u)


def _gru_steps(inputs: np.ndarray, recurrent: np.ndarray, recurrent_bias: np.ndarray) -> np.ndarray:
    """k GRU recurrences stepped together over the night: inputs (k, n, 3u), recurrent
    (k, u, 3u), recurrent_bias (k, 1, 3u) to states (k, n, u). Python steps once per
    epoch whatever k is, and those steps are most of a GRU's cost in numpy."""
    units = recurrent.shape[1]
    h = np.zeros((len(inputs), 1, units))
    states = np.empty((len(inputs), inputs.shape[1], units))
    for t in range(inputs.shape[1]):
        hidden = h @ recurrent + recurrent_bias
        step = inputs[:, t : t + 1]
        gates = _sigmoid(step[..., : 2 * units] + hidden[..., : 2 * units])
        z, r = gates[..., :units], gates[..., units:]
        candidate = np.tanh(step[..., 2 * units :] + r * hidden[..., 2 * units :])
        h = z * h + (1.0 - z) * candidate
        states[:, t] = h[:, 0]
    return states


def bigru_states(grus: list[BiGRU], xs: list[np.ndarray]) -> list[np.ndarray]:
    """Each BiGRU's states (n, 2u) over its inputs (n, d), every direction of every one
    stepped together (they must have as many units)."""
    if not grus:
        return []
    inputs, recurrent, bias = (np.concatenate(arrays) for arrays in zip(*map(BiGRU.recurrences, grus, xs)))
    states = _gru_steps(inputs, recurrent, bias)
    return [np.hstack([states[2 * k], states[2 * k + 1][::-1]]) for k in range(len(grus))]


@dataclass(frozen=True)
class Network:
    """Standardised context features (n, d) to stage probabilities (n, 4): dense layers,
    ReLU between them and softmax at the end, and a bidirectional GRU over the night
    after the first layer when it has one (entry, the GRU, exit)."""

    layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (weights, bias)
    recurrent: BiGRU | None = None

    def entry(self, z: np.ndarray) -> np.ndarray:
        """The first layer, ReLU'd when more follow."""
        weights, bias = self.layers[0]
        z = z @ weights + bias
        return np.maximum(z, 0.0) if len(self.layers) > 1 else z

    def exit(self, z: np.ndarray) -> np.ndarray:
        """The layers after the first (and after the GRU), then softmax."""
        for i, (weights, bias) in enumerate(self.layers[1:], start=2):
            z = z @ weights + bias
            if i < len(self.layers):
                z = np.maximum(z, 0.0)
        z = z - z.max(axis=1, keepdims=True)
        exp = np.exp(z)
        probabilities: np.ndarray = exp / exp.sum(axis=1, keepdims=True)
        return probabilities

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        arrays = {}
        for i, (weights, bias) in enumerate(self.layers):
            arrays[f"{prefix}w{i}"], arrays[f"{prefix}b{i}"] = weights, bias
        if self.recurrent is not None:
            for direction in ("forward", "backward"):
                for name, array in zip(_GRU_ARRAYS, getattr(self.recurrent, direction)):
                    arrays[f"{prefix}gru_{direction}_{name}"] = array
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> Network:
        depth = sum(1 for key in arrays if key.startswith(f"{prefix}w"))

        def gru(direction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            return tuple(arrays[f"{prefix}gru_{direction}_{name}"] for name in _GRU_ARRAYS)  # type: ignore[return-value]

        return cls(
            layers=tuple((arrays[f"{prefix}w{i}"], arrays[f"{prefix}b{i}"]) for i in range(depth)),
            recurrent=BiGRU(gru("forward"), gru("backward")) if f"{prefix}gru_forward_kernel" in arrays else None,
        )


@dataclass(frozen=True)
class NightModel:
    version: str
    fill_values: np.ndarray  # (15,) training medians for missing inputs
    mean: np.ndarray  # (d,) standardisation
    scale: np.ndarray  # (d,)
    networks: tuple[Network, ...]  # their probabilities are averaged
    prior: np.ndarray  # (4,) training stage frequencies
    transitions: np.ndarray | None  # (4, 4) row-stochastic; None: no smoothing
    feature_set: str = "context-v2"

    @property
    def format(self) -> str:
        """MODEL_FORMAT for one network of dense layers (what every server loads), else
        NETWORKS_FORMAT, which servers older than it refuse."""
        plain = len(self.networks) == 1 and self.networks[0].recurrent is None
        return MODEL_FORMAT if plain else NETWORKS_FORMAT

    def frame_proba(self, night: np.ndarray) -> np.ndarray:
        """Per-epoch probabilities from the networks alone, before smoothing."""
        z = (context_features(night, self.fill_values, self.feature_set) - self.mean) / self.scale
        hidden = [network.entry(z) for network in self.networks]
        grus = [(k, network.recurrent) for k, network in enumerate(self.networks) if network.recurrent is not None]
        for (k, _), states in zip(grus, bigru_states([gru for _, gru in grus], [hidden[k] for k, _ in grus])):
            hidden[k] = states
        probabilities: np.ndarray = np.mean([net.exit(h) for net, h in zip(self.networks, hidden)], axis=0)
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
        if self.transitions is not None:
            arrays["transitions"] = self.transitions
        if self.format == MODEL_FORMAT:
            return {**arrays, **self.networks[0].arrays("")}  # w0, b0, ... as servers have always read them
        for k, network in enumerate(self.networks):
            arrays.update(network.arrays(f"net{k}_"))
        return arrays

    @classmethod
    def from_arrays(cls, version: str, arrays: dict[str, np.ndarray], feature_set: str = "context-v2") -> NightModel:
        count = sum(1 for key in arrays if key.startswith("net") and key.endswith("_w0"))
        prefixes = [f"net{k}_" for k in range(count)] if count else [""]
        return cls(
            version=version,
            fill_values=arrays["fill_values"],
            mean=arrays["mean"],
            scale=arrays["scale"],
            networks=tuple(Network.from_arrays(arrays, prefix) for prefix in prefixes),
            prior=arrays["prior"],
            transitions=arrays.get("transitions"),
            feature_set=feature_set,
        )


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_night_model(model_dir: Path) -> tuple[NightModel, dict[str, object]]:
    """Load a registry directory after checking every file against the manifest's hash."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    if manifest.get("format") not in (MODEL_FORMAT, NETWORKS_FORMAT):
        raise ValueError(f"{model_dir}: format {manifest.get('format')!r} is not {MODEL_FORMAT} or {NETWORKS_FORMAT}")
    for name, expected in manifest["files"].items():
        actual = sha256_file(model_dir / name)
        if actual != expected:
            raise ValueError(f"{model_dir / name}: sha256 {actual} does not match manifest {expected}")
    with np.load(model_dir / "weights.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    feature_set = str(manifest.get("feature_set", "context-v2"))
    model = NightModel.from_arrays(str(manifest["version"]), arrays, feature_set)
    if model.format != manifest["format"]:
        raise ValueError(f"{model_dir}: the weights are a {model.format} model, the manifest says {manifest['format']}")
    return model, manifest
