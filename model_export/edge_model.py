"""The causal int8 edge model: Keras training, full-integer TFLite export, TFLM checks.

The model's input is the contract's bytes: the last ``WINDOW`` epochs of 1-byte feature
codes (255 = missing), oldest first, then one more row, the night so far (each
feature's mean code since the night began: ``noctis_contract.features.night_so_far``),
as a uint8 tensor. The device feeds the codes it writes to flash, so an epoch read back
from flash gives the same edge stage.

The newest ``RECENT`` epochs are seen one by one; the hour before them as means over
``POOL``-epoch blocks (an average pool inside the model), so an hour of context costs
the device only a longer ring of codes. Each is read against the night so far (their
difference, inside the model), as the server model reads each epoch against the night's
median: people's resting levels differ more than their stages do. The model is trained to reproduce the server
model's whole-night probabilities (distillation; ``DISTILL`` is their share of the
target, the rest PSG stages): it learns to say what the authoritative model would say,
which is what users compare it with, and the teacher can use the whole night.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from model_export.server_model import LabelledNight
from noctis_contract.features import MISSING_CODE, N_FEATURES, night_so_far, quantize
from noctis_contract.night_model import NightModel
from noctis_contract.stages import N_STAGES

WINDOW = 120  # epochs: the current one and the hour before it
INPUT_ROWS = WINDOW + 1  # and the night so far
RECENT = 10  # the newest epochs, seen one by one
POOL = 10  # the older ones, as means over blocks of this many epochs
DISTILL = 1.0  # training target: this share the server model's probabilities, the rest PSG stages
CLASS_WEIGHT = 0.5  # stages weigh (1 / frequency) ** CLASS_WEIGHT: 0 all alike, 1 fully balanced
SEED = 20261129
PER_EPOCH = 12  # learnt features of each epoch
HIDDEN = (48, 16)
# The weights kept average about the last 1 / (1 - EMA_MOMENTUM) training steps (half a
# pass): on held-out nights, over three seeds, a higher kappa4 and a narrower spread than
# the last step's weights (README, "The models").
EMA_MOMENTUM = 0.99


def causal_windows(codes: np.ndarray) -> np.ndarray:
    """(n, 15) codes of one night to (n, WINDOW, 15): each epoch with the ones before it.

    Before the first epoch the window is padded with 255 (missing), exactly as the
    device starts with an empty history.
    """
    n = len(codes)
    padded = np.vstack([np.full((WINDOW - 1, N_FEATURES), MISSING_CODE, np.uint8), codes.astype(np.uint8)])
    index = np.arange(n)[:, None] + np.arange(WINDOW)[None, :]
    return padded[index]


def model_inputs(codes: np.ndarray) -> np.ndarray:
    """(n, 15) codes of one night to the model's inputs (n, INPUT_ROWS, 15): each epoch's
    causal window and the night so far, as the device assembles them."""
    return np.concatenate([causal_windows(codes), night_so_far(codes)[:, None, :]], axis=1)


def staged_late(per_epoch: np.ndarray, lookahead: int) -> np.ndarray:
    """What each epoch of a night gets under a lookahead: the row of the epoch lookahead
    later, the night's last near its end (as the device does, flash_queue.h)."""
    return per_epoch[np.minimum(np.arange(len(per_epoch)) + lookahead, len(per_epoch) - 1)]


def night_windows(features: np.ndarray, lookahead: int = 0) -> np.ndarray:
    """The model's inputs for one night of float features (NaN = missing).

    With a lookahead, epoch t is staged from the inputs of epoch t + lookahead: a stage
    known that many epochs late (the manifest's ``lookahead_epochs``; devices place each
    output on the epoch it stages)."""
    return staged_late(model_inputs(quantize(features)), lookahead)


MAX_VALUE_CODE = 254


def build(seed: int = SEED, batch_size: int | None = None):  # type: ignore[no-untyped-def]
    """Training model (softmax output). ``export_int8`` re-wires it without the softmax."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    codes = keras.Input((INPUT_ROWS, N_FEATURES), batch_size=batch_size, name="codes")
    # Exact for integer codes: 1.0 where a value is missing (255), else 0.
    missing = layers.ReLU()(layers.Rescaling(1.0, offset=-float(MAX_VALUE_CODE))(codes))
    value = layers.Rescaling(1.0 / MAX_VALUE_CODE)(codes)
    night = layers.Cropping1D((WINDOW, 0))(value)  # (1, 15): the night so far
    # Each epoch's values against the night so far (a broadcast subtraction), its
    # missing flags as they are: (INPUT_ROWS, 30); then PER_EPOCH learnt features of
    # each epoch (a pointwise convolution, the same weights for every epoch), so that
    # the hour costs the first dense layer PER_EPOCH inputs an epoch instead of 30.
    relative = layers.Concatenate()([keras.ops.subtract(value, night), missing])
    per_epoch = layers.Conv1D(PER_EPOCH, 1, activation="relu", name="per_epoch")(relative)
    recent = layers.Flatten()(layers.Cropping1D((WINDOW - RECENT, 1))(per_epoch))
    earlier = layers.Flatten()(layers.AveragePooling1D(POOL)(layers.Cropping1D((0, RECENT + 1))(per_epoch)))
    # The night so far as it is: its values and which of them are still unseen.
    so_far = layers.Flatten()(layers.Concatenate()([night, layers.Cropping1D((WINDOW, 0))(missing)]))
    hidden = layers.Concatenate()([recent, earlier, so_far])
    for i, width in enumerate(HIDDEN):
        hidden = layers.Dense(width, activation="relu", name=f"hidden{i}")(hidden)
    logits = layers.Dense(N_STAGES, name="logits")(hidden)
    stages = layers.Softmax(name="stages")(logits)
    return keras.Model(codes, stages)


def logits_model(trained):  # type: ignore[no-untyped-def]
    """The same weights with batch 1 and logits out: static shapes for TFLM, and no
    int8 softmax, whose coarse output steps would tie the argmax between stages."""
    import keras

    single = build(batch_size=1)
    single.set_weights(trained.get_weights())
    return keras.Model(single.input, single.get_layer("logits").output)


def train(windows: np.ndarray, targets: np.ndarray, epochs: int = 12, seed: int = SEED, verbose: int = 0):  # type: ignore[no-untyped-def]
    """Fit to target probabilities (n, 4); rare stages weigh more (inverse frequency^CLASS_WEIGHT)."""
    import keras

    model = build(seed)
    stages = targets.argmax(axis=1)
    counts = np.maximum(np.bincount(stages, minlength=N_STAGES), 1).astype(float)
    weights = (len(stages) / (N_STAGES * counts)) ** CLASS_WEIGHT
    optimizer = keras.optimizers.Adam(2e-3, use_ema=True, ema_momentum=EMA_MOMENTUM)
    model.compile(optimizer=optimizer, loss="categorical_crossentropy")
    model.fit(
        windows.astype(np.float32),
        targets,
        sample_weight=weights[stages],
        epochs=epochs,
        batch_size=256,
        verbose=verbose,
        shuffle=True,
    )
    return model


def export_int8(model, calibration: np.ndarray) -> bytes:  # type: ignore[no-untyped-def]
    """Full-integer quantization; input uint8 codes (scale 1, zero point 0), output int8."""
    import tensorflow as tf

    rng = np.random.default_rng(SEED)
    sample = calibration[rng.choice(len(calibration), size=min(1000, len(calibration)), replace=False)]
    # Pin the input range to 0..255 so the input scale is exactly 1: codes pass unchanged.
    extremes = np.stack([np.zeros((INPUT_ROWS, N_FEATURES)), np.full((INPUT_ROWS, N_FEATURES), 255.0)])
    sample = np.concatenate([extremes, sample.astype(np.float64)]).astype(np.float32)

    def representative():  # type: ignore[no-untyped-def]
        for row in sample:
            yield [row[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(logits_model(model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@dataclass(frozen=True)
class Int8Io:
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int


def litert_predict(model_bytes: bytes, windows: np.ndarray) -> tuple[np.ndarray, Int8Io]:
    """Raw int8 outputs (n, 4) from the LiteRT interpreter, one epoch at a time."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Reference kernels: the ones TFLM runs, so outputs can be compared bit for bit.
    interpreter = Interpreter(model_content=model_bytes, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = np.empty((len(windows), N_STAGES), dtype=np.int8)
    for i, window in enumerate(windows):
        interpreter.set_tensor(inp["index"], window[None].astype(np.uint8))
        interpreter.invoke()
        results[i] = interpreter.get_tensor(out["index"])[0]
    io = Int8Io(
        float(inp["quantization"][0]),
        int(inp["quantization"][1]),
        float(out["quantization"][0]),
        int(out["quantization"][1]),
    )
    return results, io


def tflm_interpreter(model_bytes: bytes, arena_size: int):  # type: ignore[no-untyped-def]
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(model_bytes, arena_size=arena_size)


def tflm_predict(model_bytes: bytes, windows: np.ndarray, arena_size: int = 16 * 1024) -> np.ndarray:
    """Raw int8 outputs (n, 4) from the TensorFlow Lite Micro interpreter."""
    interpreter = tflm_interpreter(model_bytes, arena_size)
    results = np.empty((len(windows), N_STAGES), dtype=np.int8)
    for i, window in enumerate(windows):
        interpreter.set_input(window[None].astype(np.uint8), 0)
        interpreter.invoke()
        results[i] = interpreter.get_output(0)[0]
    return results


def tflm_min_arena_bytes(model_bytes: bytes, probe: np.ndarray) -> int:
    """The smallest tensor arena (16-byte steps) in which TFLM allocates and invokes."""

    def works(size: int) -> bool:
        try:
            interpreter = tflm_interpreter(model_bytes, size)
            interpreter.set_input(probe[None].astype(np.uint8), 0)
            interpreter.invoke()
            return True
        except (RuntimeError, ValueError):
            return False

    low, high = 0, 64 * 1024
    if not works(high):
        raise RuntimeError("model does not fit a 64 KiB arena")
    while high - low > 16:
        middle = (low + high) // 2 // 16 * 16
        if works(middle):
            high = middle
        else:
            low = middle
    return high


def multiply_accumulates(model) -> int:  # type: ignore[no-untyped-def]
    """MACs per inference: each dense layer's weights once, a convolution's at every
    position it slides to (the rest is element-wise)."""
    total = 0
    for layer in model.layers:
        kind = layer.__class__.__name__
        if kind == "Dense":
            total += int(np.prod(layer.get_weights()[0].shape))
        elif kind == "Conv1D":
            total += int(np.prod(layer.get_weights()[0].shape)) * int(layer.output.shape[1])
    return total


def operator_names(model_bytes: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


def float_weights(model) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """The trained float weights as plain arrays (saved as .npz, loaded without pickle)."""
    return {f"w{i:02d}": w for i, w in enumerate(model.get_weights())}


def from_float_weights(arrays: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    """The newest form (``build``) with a registered version's weights: edge-5 on (earlier
    versions had no per-epoch layer; their TFLite files stay what the device runs)."""
    model = build()
    model.set_weights([arrays[k] for k in sorted(arrays)])
    return model


def mixture(
    nights: Sequence[LabelledNight], teacher: NightModel | None = None, lookahead: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Scored epochs of many nights as (windows, targets): each target the PSG stage as
    one-hot probabilities, mixed with the teacher's whole-night probabilities if given."""
    xs, ys = [], []
    for night in nights:
        scored = night.stages >= 0
        target = np.eye(N_STAGES)[night.stages[scored]]
        if teacher is not None:
            target = (1 - DISTILL) * target + DISTILL * teacher.predict_proba(night.features)[scored]
        xs.append(night_windows(night.features, lookahead)[scored])
        ys.append(target)
    return np.concatenate(xs), np.concatenate(ys)
