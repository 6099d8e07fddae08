"""Drift statistics: plain functions on arrays, no database, no framework.

- Edge-vs-cloud agreement: does the device's int8 model still stage like the
  authoritative server model? A firmware or sensor fault shows here first.
- Feature drift: the population stability index (PSI) of each feature against the
  server model's training distribution (its manifest's reference quantiles), and the
  change in how often the feature is missing.
- Prediction drift: PSI of the predicted stage mix against the training stage mix.

PSI reading, as commonly used: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from noctis_contract.features import REFERENCE_QUANTILES
from noctis_contract.stages import N_STAGES

QUANTILES = REFERENCE_QUANTILES  # what the model manifests record
_REFERENCE_SHARES = np.diff(np.concatenate([[0.0], QUANTILES, [1.0]]))  # share of training data per bin
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
EPSILON = 1e-4  # keeps empty bins from making the PSI infinite


def psi(expected: np.ndarray, observed: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), EPSILON, None)
    o = np.clip(np.asarray(observed, dtype=float), EPSILON, None)
    e, o = e / e.sum(), o / o.sum()
    return float(np.sum((o - e) * np.log(o / e)))


def feature_psi(values: np.ndarray, reference_quantiles: Sequence[float]) -> float | None:
    """PSI of observed values (NaN ignored) in the bins the training quantiles define."""
    seen = values[~np.isnan(values)]
    if len(seen) == 0 or len(reference_quantiles) != len(QUANTILES):
        return None
    edges = np.asarray(reference_quantiles, dtype=float)
    # side="right": a value equal to an edge belongs to the bin above it, as in training.
    counts = np.bincount(np.searchsorted(edges, seen, side="right"), minlength=len(edges) + 1)
    return psi(_REFERENCE_SHARES, counts / counts.sum())


def cohen_kappa(a: np.ndarray, b: np.ndarray, classes: int = N_STAGES) -> float | None:
    if len(a) == 0:
        return None
    confusion = np.zeros((classes, classes))
    np.add.at(confusion, (a, b), 1)
    total = confusion.sum()
    observed = np.trace(confusion) / total
    expected = float((confusion.sum(axis=0) * confusion.sum(axis=1)).sum()) / total**2
    return 1.0 if expected == 1 else float((observed - expected) / (1 - expected))


def edge_agreement(edge: np.ndarray, server: np.ndarray) -> dict[str, float | int | None]:
    """Agreement of edge and server stages on the epochs both scored."""
    both = (edge >= 0) & (server >= 0)
    edge, server = edge[both].astype(int), server[both].astype(int)
    return {
        "epochs": int(both.sum()),
        "agreement": float((edge == server).mean()) if len(edge) else None,
        "kappa": cohen_kappa(edge, server),
    }


def stage_mix(stages: np.ndarray) -> np.ndarray:
    stages = stages[stages >= 0].astype(int)
    return np.bincount(stages, minlength=N_STAGES) / max(len(stages), 1)


def level(value: float | None) -> str:
    if value is None:
        return "unknown"
    return "major" if value > PSI_MAJOR else "moderate" if value > PSI_MODERATE else "stable"
