"""Whole-night sequence models over the server's context features.

What the field uses on heart rate and movement: a network that reads the whole night
at once, a dilated temporal convolution (``tcn``, 31 epochs either side) or a
bidirectional GRU (``bigru``), each over the standardised context features of
``noctis_contract.night_model`` and trained with TensorFlow. ``python -m model_export
compare-sequence`` (about 25 minutes) measures them, and mixes of them with the
server's logistic form, leave-subjects-out on the same folds: alone they beat the
logistic form's kappa4 by 0.02 to 0.03 at twice its calibration error; averaged with it
they beat both, calibration included, and the logistic form with AVERAGED_GRUS BiGRUs
of different seeds is the registered server form (`train_averaged`). A trained BiGRU
is served by the numpy runtime of ``noctis_contract.night_model`` (`night_model`): the
server needs no TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from model_export.server_model import LabelledNight, fill_values, moments
from noctis_contract.night_model import BiGRU, Network, NightModel, context_features
from noctis_contract.stages import N_STAGES

KINDS = ("tcn", "bigru")
SEED = 20261130
EPOCHS = {"tcn": 40, "bigru": 30}  # passes over the training nights
UNITS = {"tcn": 32, "bigru": 16}
DILATIONS = (1, 2, 4, 8, 16)  # kernel 3: each output sees 31 epochs either side
# BiGRUs of seeds SEED, SEED+1, ... in the registered form, beside the logistic form
# with equal weights: three of them are a better BiGRU than any one (held-out kappa4 on
# device codes 0.477 against 0.454 to 0.475), worth three quarters of the vote (README).
AVERAGED_GRUS = 3


@dataclass
class SequenceModel:
    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    feature_set: str
    prior: np.ndarray  # (4,) training stage frequencies
    network: Any  # a Keras model: (1, epochs, features) -> (1, epochs, 4)

    def standardised(self, features: np.ndarray) -> np.ndarray:
        return ((context_features(features, self.fill, self.feature_set) - self.mean) / self.scale).astype(np.float32)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        # Called directly, not through predict(): nights differ in length, and predict()
        # would trace a new graph for each.
        return np.asarray(self.network(self.standardised(features)[None], training=False)[0], dtype=np.float64)


def build(kind: str, inputs: int, seed: int = SEED):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    night = keras.Input((None, inputs))
    hidden = layers.Dropout(0.2)(layers.Dense(32, activation="relu")(night))
    if kind == "tcn":
        for rate in DILATIONS:
            hidden = layers.Conv1D(UNITS[kind], 3, dilation_rate=rate, padding="same", activation="relu")(hidden)
    elif kind == "bigru":
        hidden = layers.Bidirectional(layers.GRU(UNITS[kind], return_sequences=True))(hidden)
    else:
        raise ValueError(f"kind must be one of {KINDS}")
    network = keras.Model(night, layers.Dense(N_STAGES, activation="softmax")(hidden))
    network.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", weighted_metrics=[])
    return network


def train(
    nights: Sequence[LabelledNight],
    version: str,
    kind: str,
    feature_set: str,
    epochs: int | None = None,
    seed: int = SEED,
) -> SequenceModel:
    """Nights padded to the longest; unscored and padded epochs weigh nothing."""
    fill = fill_values(nights)
    features = [context_features(n.features, fill, feature_set) for n in nights]  # each night's, once
    mean, scale = moments(np.vstack([f[n.stages >= 0] for f, n in zip(features, nights)]))
    length = max(len(f) for f in features)
    x = np.zeros((len(nights), length, len(mean)), np.float32)
    y = np.zeros((len(nights), length), np.int64)
    weight = np.zeros((len(nights), length), np.float32)
    for i, (night_features, night) in enumerate(zip(features, nights)):
        n = len(night_features)
        x[i, :n] = (night_features - mean) / scale
        y[i, :n] = np.maximum(night.stages, 0)
        weight[i, :n] = night.stages >= 0
    network = build(kind, len(mean), seed)
    network.fit(x, y, sample_weight=weight, epochs=epochs or EPOCHS[kind], batch_size=8, verbose=0)
    prior = np.bincount(y[weight > 0], minlength=N_STAGES) / (weight > 0).sum()
    return SequenceModel(fill, mean, scale, feature_set, np.maximum(prior, 1e-6), network)


def night_model(model: SequenceModel, version: str) -> NightModel:
    """A trained BiGRU as the server's numpy runtime runs it (no TensorFlow to serve):
    the dense layer, the bidirectional GRU and the softmax layer's weights."""
    from keras import layers

    dense = [layer for layer in model.network.layers if isinstance(layer, layers.Dense)]
    (gru,) = [layer for layer in model.network.layers if isinstance(layer, layers.Bidirectional)]
    gru_directions = (gru.forward_layer, gru.backward_layer)

    def weights(layer: Any) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(w, dtype=np.float64) for w in layer.get_weights())

    return NightModel(
        version=version,
        fill_values=model.fill,
        mean=model.mean,
        scale=model.scale,
        networks=(Network(tuple(weights(layer) for layer in dense), BiGRU(*map(weights, gru_directions))),),  # type: ignore[arg-type]
        prior=model.prior,
        transitions=None,
        feature_set=model.feature_set,
    )


def train_averaged(
    nights: Sequence[LabelledNight], version: str, feature_set: str, epochs: int | None = None
) -> NightModel:
    """The server's logistic form and AVERAGED_GRUS BiGRUs trained on the same nights
    from different seeds, their probabilities averaged: better than any one of them on
    held-out subjects, and better calibrated than the BiGRUs alone (README, "The models")."""
    from model_export import server_model

    logistic = server_model.train(nights, version, feature_set=feature_set, **server_model.LOGISTIC_FORM)
    grus = [
        night_model(train(nights, version, "bigru", feature_set, epochs, seed=SEED + k), version)
        for k in range(AVERAGED_GRUS)
    ]
    for gru in grus:
        for name in ("fill_values", "mean", "scale", "prior"):  # one standardisation for all
            assert np.allclose(getattr(logistic, name), getattr(gru, name)), name
    return replace(logistic, networks=logistic.networks + tuple(net for gru in grus for net in gru.networks))
