"""Train and evaluate the whole-night server model (context features, MLP, HMM smoothing)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score, roc_auc_score
from sklearn.neural_network import MLPClassifier

from noctis_contract.night_model import LOG_FEATURES, Network, NightModel, context_features
from noctis_contract.stages import N_STAGES

SEED = 20261129


class LabelledNight(Protocol):
    features: np.ndarray
    stages: np.ndarray


def _design(nights: Sequence[LabelledNight], fill: np.ndarray, feature_set: str) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for night in nights:
        scored = night.stages >= 0
        xs.append(context_features(night.features, fill, feature_set)[scored])
        ys.append(night.stages[scored])
    return np.vstack(xs), np.concatenate(ys)


def transition_matrix(nights: Sequence[LabelledNight]) -> np.ndarray:
    counts = np.ones((N_STAGES, N_STAGES))  # add-one: no transition is impossible
    for night in nights:
        s = night.stages
        valid = (s[:-1] >= 0) & (s[1:] >= 0)
        np.add.at(counts, (s[:-1][valid], s[1:][valid]), 1)
    return counts / counts.sum(axis=1, keepdims=True)


def fill_values(nights: Sequence[LabelledNight]) -> np.ndarray:
    """What a missing raw feature is computed with: its median over the training nights."""
    stacked = np.vstack([n.features for n in nights])
    stacked = np.where(LOG_FEATURES, np.log1p(np.maximum(stacked, 0)), stacked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # radar columns of real data are all NaN
        fill = np.nanmedian(stacked, axis=0)
    return np.where(np.isnan(fill), 0.0, fill)  # never observed: a constant, its indicator says why


def moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The context features' means and scales over the training epochs (x: scored epochs)."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(scale < 1e-9, 1.0, scale)


LOGISTIC_FORM: dict[str, Any] = {"kind": "logistic", "smooth": False}  # server-3's form, and half of server-4


def train(
    nights: Sequence[LabelledNight],
    version: str,
    kind: str = "mlp",
    smooth: bool = True,
    feature_set: str = "context-v2",
    class_weight: float = 0.0,
) -> NightModel:
    """class_weight: stages weigh (1 / frequency) ** class_weight in the loss (logistic
    only; 0 = all alike), so rare wake epochs are not simply outvoted."""
    fill = fill_values(nights)
    x, y = _design(nights, fill, feature_set)
    mean, scale = moments(x)
    z = (x - mean) / scale
    prior = np.bincount(y, minlength=N_STAGES) / len(y)
    if kind == "mlp":
        clf = MLPClassifier(
            hidden_layer_sizes=(64, 32), alpha=1e-2, max_iter=60, early_stopping=True, random_state=SEED
        )
        clf.fit(z, y)
        layers = [(w, b) for w, b in zip(clf.coefs_, clf.intercepts_)]
        classes = clf.classes_
    else:
        frequency = np.bincount(y, minlength=N_STAGES) / len(y)
        weights = {int(c): float(frequency[c] ** -class_weight) for c in np.unique(y)}
        clf = LogisticRegression(C=0.1, max_iter=2000, random_state=SEED, class_weight=weights)
        clf.fit(z, y)
        layers = [(clf.coef_.T, clf.intercept_)]
        classes = clf.classes_
    weights, bias = layers[-1]
    full_w = np.zeros((weights.shape[0], N_STAGES))
    full_b = np.full(N_STAGES, -1e3)  # a stage never seen in training is never predicted
    full_w[:, classes] = weights
    full_b[classes] = bias
    layers[-1] = (full_w, full_b)
    return NightModel(
        version=version,
        fill_values=fill,
        mean=mean,
        scale=scale,
        networks=(Network(tuple(layers)),),
        prior=np.maximum(prior, 1e-6),
        transitions=transition_matrix(nights) if smooth else None,
        feature_set=feature_set,
    )


THREE_CLASS = np.array([0, 1, 1, 2])  # wake, NREM, REM
SLEEP = np.array([0, 1, 1, 1])


def scores(y_true: np.ndarray, y_pred: np.ndarray, p_wake: np.ndarray | None = None) -> dict[str, float]:
    """Agreement with PSG for 4 classes, 3 classes (Wake/NREM/REM) and sleep/wake."""
    out = {
        "acc4": float(accuracy_score(y_true, y_pred)),
        "kappa4": float(cohen_kappa_score(y_true, y_pred)),
        "macro_f1_4": float(f1_score(y_true, y_pred, average="macro")),
        "acc3": float(accuracy_score(THREE_CLASS[y_true], THREE_CLASS[y_pred])),
        "kappa3": float(cohen_kappa_score(THREE_CLASS[y_true], THREE_CLASS[y_pred])),
        "sleepwake_acc": float(accuracy_score(SLEEP[y_true], SLEEP[y_pred])),
        "sleepwake_kappa": float(cohen_kappa_score(SLEEP[y_true], SLEEP[y_pred])),
    }
    truth_sleep, pred_sleep = SLEEP[y_true] == 1, SLEEP[y_pred] == 1
    out["sleep_sensitivity"] = float(pred_sleep[truth_sleep].mean())
    out["wake_specificity"] = float((~pred_sleep)[~truth_sleep].mean())
    if p_wake is not None:
        out["sleepwake_auc"] = float(roc_auc_score(~truth_sleep, p_wake))
    for stage, name in enumerate(("wake", "light", "deep", "rem")):
        out[f"recall_{name}"] = float((y_pred[y_true == stage] == stage).mean())
    return out


def calibration(y_true: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Reliability of the top stage's probability: per bin of it, how often that stage was right."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    return [
        {
            "from": float(edges[b]),
            "to": float(edges[b + 1]),
            "epochs": int((which == b).sum()),
            "mean_probability": float(confidence[which == b].mean()),
            "accuracy": float(right[which == b].mean()),
        }
        for b in range(bins)
        if (which == b).any()
    ]


def expected_calibration_error(bins: list[dict[str, float]]) -> float:
    total = sum(b["epochs"] for b in bins)
    return float(sum(b["epochs"] * abs(b["accuracy"] - b["mean_probability"]) for b in bins) / total)


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    matrix = np.zeros((N_STAGES, N_STAGES), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def folds_of(count: int, folds: int) -> list[set[int]]:
    order = np.random.default_rng(SEED).permutation(count)
    return [{int(i) for i in order[k::folds]} for k in range(folds)]


@dataclass
class HeldOut:
    """Cross-validated predictions: every one made by a model that never saw the night."""

    truth: np.ndarray  # scored epochs of all nights, concatenated
    predicted: np.ndarray
    p_wake: np.ndarray | None
    nights: dict[int, np.ndarray]  # night index -> predicted stage of every epoch
    probabilities: np.ndarray | None = None  # (epochs, 4) where the model gives them
    agreement_with_server: float | None = None  # an edge model's: its stages against its teacher's

    def scores(self) -> dict[str, float]:
        out = scores(self.truth, self.predicted, self.p_wake)
        if self.probabilities is not None:
            out["expected_calibration_error"] = expected_calibration_error(calibration(self.truth, self.probabilities))
        if self.agreement_with_server is not None:
            out["agreement_with_server"] = self.agreement_with_server
        return out


class Stager(Protocol):
    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...


def fold_training(
    nights: Sequence[LabelledNight],
    held: set[int],
    extra_training: Sequence[LabelledNight] = (),
    copies: Sequence[LabelledNight] = (),
) -> list[LabelledNight]:
    """A fold's training nights: every night not held out, its copy when there are
    copies (the same night as another sensor measured it, same order as nights: a copy
    is held out with its night), and the extra nights (simulated, never scored)."""
    kept = [i for i in range(len(nights)) if i not in held]
    return [nights[i] for i in kept] + [copies[i] for i in kept if copies] + list(extra_training)


def leave_subjects_out(
    nights: Sequence[LabelledNight],
    folds: int,
    extra_training: Sequence[LabelledNight] = (),
    on_fold: Callable[[int, Stager], None] | None = None,
    trainer: Callable[..., Stager] | None = None,
    copies: Sequence[LabelledNight] = (),
    **train_options: object,
) -> HeldOut:
    """Cross-validate by subject: no night is ever scored by a model that saw it.
    trainer: train (this module's) unless given, called with the training nights
    (fold_training), version="cv" and train_options. on_fold is given each fold's number
    and model; held_out scores those models again on other recordings of the nights."""
    models = []
    for k, held in enumerate(folds_of(len(nights), folds)):
        model = (trainer or train)(fold_training(nights, held, extra_training, copies), version="cv", **train_options)
        models.append(model)
        if on_fold:
            on_fold(k, model)
    return held_out(models, nights)


def held_out(models: Sequence[Stager], nights: Sequence[LabelledNight]) -> HeldOut:
    """Every night staged by the model of the fold that held it out (leave_subjects_out's
    models, one per fold): the same nights it trained on, or the same nights as another
    sensor measured them (evaluate --radar-error)."""
    truth, probabilities, per_night = [], [], {}
    for model, held in zip(models, folds_of(len(nights), len(models)), strict=True):
        for i in sorted(held):
            scored = nights[i].stages >= 0
            night_probabilities = model.predict_proba(nights[i].features)
            per_night[i] = night_probabilities.argmax(axis=1)
            truth.append(nights[i].stages[scored])
            probabilities.append(night_probabilities[scored])
    p = np.vstack(probabilities)
    return HeldOut(np.concatenate(truth), p.argmax(axis=1), p[:, 0], per_night, p)
