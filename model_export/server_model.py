"""Train and evaluate the whole-night server model (context features + softmax)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

from model_export.walch import Night
from noctis_contract.night_model import NightModel, context_features

SEED = 20261129


def _design(nights: Sequence[Night], fill_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for night in nights:
        scored = night.stages >= 0
        xs.append(context_features(night.features, fill_values)[scored])
        ys.append(night.stages[scored])
    return np.vstack(xs), np.concatenate(ys)


def train(nights: Sequence[Night], version: str) -> NightModel:
    all_features = np.vstack([n.features for n in nights])
    with np.errstate(all="ignore"):
        fill = np.nanmedian(all_features, axis=0)
    fill = np.where(np.isnan(fill), 0.0, fill)  # never observed: a constant, its indicator says why
    x, y = _design(nights, fill)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale < 1e-9, 1.0, scale)
    clf = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced", random_state=SEED)
    clf.fit((x - mean) / scale, y)
    weights = np.zeros((x.shape[1], 4))
    bias = np.full(4, -1e3)  # a stage never seen in training is never predicted
    for column, stage in enumerate(clf.classes_):
        weights[:, stage] = clf.coef_[column]
        bias[stage] = clf.intercept_[column]
    return NightModel(version=version, fill_values=fill, mean=mean, scale=scale, weights=weights, bias=bias)


def scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Agreement with PSG for 4 classes, 3 classes (Wake/NREM/REM) and sleep/wake."""
    three = np.array([0, 1, 1, 2])
    sleep = np.array([0, 1, 1, 1])
    return {
        "acc4": float(accuracy_score(y_true, y_pred)),
        "kappa4": float(cohen_kappa_score(y_true, y_pred)),
        "macro_f1_4": float(f1_score(y_true, y_pred, average="macro")),
        "acc3": float(accuracy_score(three[y_true], three[y_pred])),
        "kappa3": float(cohen_kappa_score(three[y_true], three[y_pred])),
        "sleepwake_acc": float(accuracy_score(sleep[y_true], sleep[y_pred])),
        "sleepwake_kappa": float(cohen_kappa_score(sleep[y_true], sleep[y_pred])),
    }


def leave_subjects_out(
    nights: Sequence[Night], folds: int, on_fold: Callable[[int], None] | None = None
) -> dict[str, float]:
    """Cross-validate by subject: no night is ever scored by a model that saw it."""
    order = np.random.default_rng(SEED).permutation(len(nights))
    truth, predicted = [], []
    for fold in range(folds):
        held = {int(i) for i in order[fold::folds]}
        model = train([n for i, n in enumerate(nights) if i not in held], version="cv")
        for i in held:
            night = nights[i]
            scored = night.stages >= 0
            truth.append(night.stages[scored])
            predicted.append(model.predict_proba(night.features).argmax(axis=1)[scored])
        if on_fold:
            on_fold(fold)
    return scores(np.concatenate(truth), np.concatenate(predicted))
