"""python -m model_export train | evaluate | export | card | compare-server"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from rich.progress import Progress

from model_export import sequence_model, server_model
from model_export.walch import Night, load_night, subject_ids
from noctis_contract.features import FEATURE_NAMES, REFERENCE_QUANTILES, as_sent
from noctis_contract.night_model import HEART_RATE_SMOOTHING, NightModel

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data" / "walch2019"
DEFAULT_REGISTRY = HERE / "registry"
DEFAULT_FIRMWARE = HERE.parent / "edge_firmware"
# Chosen by measurement on held-out subjects: `compare-server` and `compare-sequence`
# (the form), server-3's card (the features).
SERVER_FEATURES = "context-v4"
SERVER_FORM = f"logistic+{sequence_model.AVERAGED_GRUS} bigru seeds averaged"
EDGE_EPOCHS = 40


AnyNight = TypeVar("AnyNight", bound=server_model.LabelledNight)


def as_sent_night(night: AnyNight) -> AnyNight:
    """The night with its features as a device sends them (as_sent). Every night a model
    trains on or is measured on goes through this: the contract's codes clip heart-rate
    variability at 200 ms and activity at 300 counts, and a model trained on the floats
    beyond them fails on what it serves (README, "The models")."""
    return replace(night, features=as_sent(night.features))


def load_real(data_dir: Path, progress: Progress) -> list[Night]:
    subjects = subject_ids(data_dir)
    if not subjects:
        sys.exit(f"no *_cleaned_psg.out files in {data_dir}")
    task = progress.add_task("loading real nights", total=len(subjects))
    nights = []
    for subject in subjects:
        nights.append(as_sent_night(load_night(data_dir, subject)))
        progress.advance(task)
    return nights


def simulate(count: int, progress: Progress, seed: int = 0) -> list:  # type: ignore[type-arg]
    from model_export.simulator import simulate_nights

    task = progress.add_task("simulating nights", total=count)
    nights = []
    for night in simulate_nights(count, seed):
        nights.append(as_sent_night(night))
        progress.advance(task)
    return nights


def reference_stats(nights: Sequence[server_model.LabelledNight]) -> dict[str, dict[str, object]]:
    stacked = np.vstack([n.features for n in nights])
    stats: dict[str, dict[str, object]] = {}
    for i, name in enumerate(FEATURE_NAMES):
        column = stacked[:, i]
        seen = column[~np.isnan(column)]
        stats[name] = {"missing_ratio": round(float(np.isnan(column).mean()), 6)}
        if len(seen):
            stats[name].update(
                mean=float(seen.mean()),
                std=float(seen.std()),
                quantiles=[float(q) for q in np.quantile(seen, REFERENCE_QUANTILES)],
            )
    return stats


def train_server_model(nights: Sequence[server_model.LabelledNight], version: str) -> NightModel:
    """The registered server form, SERVER_FORM."""
    return sequence_model.train_averaged(nights, version, SERVER_FEATURES)


def server_cv(  # type: ignore[no-untyped-def]
    real: list[Night],
    sim: list,  # type: ignore[type-arg]
    folds: int,
    progress: Progress,
    copies: Sequence[Night] = (),
):
    """The server form's held-out scores, and each fold's model (the edge model's
    teachers on the same folds: edge_cv; server_model.held_out scores them on other
    recordings of the nights). copies: the real nights as another sensor measured
    them, trained on beside them (server_model.fold_training)."""
    task = progress.add_task("server model: leave-subjects-out", total=folds)
    fold_models: list[NightModel] = []

    def on_fold(_: int, model: NightModel) -> None:
        fold_models.append(model)
        progress.advance(task)

    held = server_model.leave_subjects_out(
        real, folds, extra_training=sim, on_fold=on_fold, trainer=train_server_model, copies=copies
    )
    return held, fold_models


def edge_cv(
    real: list[Night],
    sim: list,  # type: ignore[type-arg]
    folds: int,
    progress: Progress,
    teachers: Sequence[NightModel] = (),
    seeds: int = 1,
    lookahead: int = 0,
    copies: Sequence[Night] = (),
    scored_on: Sequence[Night] = (),
) -> list[server_model.HeldOut]:
    """Leave-subjects-out for the edge model, scored with its int8 TFLite Micro outputs:
    one HeldOut per training seed of the student (edge_model.SEED, +1, ...; the first is
    the registered model's), each fold's targets computed once for all of them.

    Each fold's teacher is the server model trained on the same nights (server_cv's
    fold models when given, else trained here), so the held-out night is unseen by
    both; ``agreement_with_server`` compares their stages on it. ``lookahead``: the
    student stages each epoch that many epochs late (edge_model.night_windows).
    copies: as server_cv's. scored_on: the real nights as scored, when another sensor
    measured them (evaluate --radar-error), same order and stages."""
    from model_export import edge_model

    scored_nights = scored_on or real
    task = progress.add_task("edge model: leave-subjects-out", total=folds * seeds)
    order: list[int] = []  # held-out nights, fold by fold
    teacher_stages: dict[int, np.ndarray] = {}
    per_night: list[dict[int, np.ndarray]] = [{} for _ in range(seeds)]  # per seed: night -> stages
    for k, held in enumerate(server_model.folds_of(len(real), folds)):
        train = server_model.fold_training(real, held, sim, copies)
        teacher = teachers[k] if teachers else train_server_model(train, "teacher")
        x, targets = edge_model.mixture(train, teacher, lookahead)
        order += sorted(held)
        windows = {i: edge_model.night_windows(scored_nights[i].features, lookahead) for i in held}
        teacher_stages.update({i: teacher.predict_proba(scored_nights[i].features).argmax(axis=1) for i in held})
        for s in range(seeds):
            model = edge_model.train(x, targets, epochs=EDGE_EPOCHS, seed=edge_model.SEED + s)
            tflite = edge_model.export_int8(model, x)
            for i in held:
                per_night[s][i] = edge_model.tflm_predict(tflite, windows[i]).argmax(axis=1)
            progress.advance(task)
    scored = {i: real[i].stages >= 0 for i in order}
    truth = np.concatenate([real[i].stages[scored[i]] for i in order])
    teacher_said = np.concatenate([teacher_stages[i][scored[i]] for i in order])
    runs = []
    for stages in per_night:
        predicted = np.concatenate([stages[i][scored[i]] for i in order])
        agreement = float((predicted == teacher_said).mean())
        runs.append(server_model.HeldOut(truth, predicted, None, stages, agreement_with_server=agreement))
    return runs


def _spread(runs: list[dict[str, float]], prefix: str) -> str:
    """Mean, lowest and highest of each score over training seeds."""
    parts = []
    for key in ("kappa4", "acc3", "agreement_with_server"):
        values = np.array([run[key] for run in runs])
        parts.append(f"{prefix}{key} mean={values.mean():.3f} min={values.min():.3f} max={values.max():.3f}")
    return f"over {len(runs)} seeds: " + " ".join(parts)


def _line(metrics: dict[str, float], prefix: str = "") -> str:
    keys = ("kappa4", "kappa3", "acc3", "sleepwake_acc", "sleepwake_kappa")
    line = " ".join(f"{prefix}{k}={metrics[k]:.3f}" for k in keys)
    if "agreement_with_server" in metrics:  # an edge model's
        line += f" {prefix}server_agreement={metrics['agreement_with_server']:.3f}"
    return line


def radar_grade(nights: list[Night]) -> list[Night]:
    """The nights with the radar's heart-rate error, each night's its own (seeded by its
    place, so every fold and every run sees the same)."""
    from model_export.simulator import with_radar_error

    return [
        as_sent_night(replace(n, features=with_radar_error(n.features, np.random.default_rng(1000 + i))))
        for i, n in enumerate(nights)
    ]


def evaluate(args: argparse.Namespace) -> None:
    """Leave-subjects-out scores of both models. With --radar-error both are scored on
    the held-out nights with a radar's heart rate, and the server model on them as
    recorded too; the models train on the nights as recorded (held-out), with the
    radar's error (all), or on both recordings of each night (both)."""
    with Progress() as progress:
        recorded = load_real(args.data, progress)
        sim = simulate(args.sim_nights, progress)
        radar = radar_grade(recorded) if args.radar_error else []
        trained_on = radar if args.radar_error == "all" else recorded
        copies = radar if args.radar_error == "both" else []
        scored_on = radar or recorded
        server_held, teachers = server_cv(trained_on, sim, args.folds, progress, copies)

        def server_scores(nights: list[Night]) -> dict[str, float]:
            """The fold models on these nights: scored already when they are those trained on."""
            held = server_held if nights is trained_on else server_model.held_out(teachers, nights)
            return held.scores()

        server = server_scores(scored_on)
        runs = edge_cv(
            trained_on, sim, args.folds, progress, teachers, args.edge_seeds, args.edge_lookahead, copies, scored_on
        )
        edges = [held.scores() for held in runs]
    summary = {
        "server": server,
        "edge": edges[0],
        "edge_seeds": edges,
        "edge_lookahead": args.edge_lookahead,
        "radar_error": args.radar_error,
    }
    if radar:
        summary["server_on_recorded_heart_rate"] = server_scores(recorded)
    print(json.dumps(summary, indent=2))
    if radar:
        print(_line(summary["server_on_recorded_heart_rate"], "recorded_"))
    if len(edges) > 1:
        print(_spread(edges, "edge_"))
    print(_line(server))
    print(_line(edges[0], "edge_"))


def train(args: argparse.Namespace) -> None:
    versions = {"server": [args.server_version], "edge": [args.edge_version]}.get(
        args.models, [args.server_version, args.edge_version]
    )
    for version in versions:  # before minutes of training, not after
        if (args.registry / version).exists():
            sys.exit(
                f"{args.registry / version} exists: a registered version is never overwritten; "
                "name a new one (--server-version / --edge-version) or train into another --registry"
            )
    with Progress() as progress:
        real = load_real(args.data, progress)
        sim = simulate(args.sim_nights, progress)
        copies = radar_grade(real) if args.radar_copies else []
        training = {
            "real": f"{args.data.name}: {len(real)} PSG nights",
            "simulated_nights": len(sim),
            "evaluation": f"leave-subjects-out on the real nights, {args.folds} folds; "
            "simulated nights only ever in training",
        }
        if copies:
            training["radar_copies"] = (
                f"each real night also as a radar would have measured its heart rate "
                f"(simulator.with_radar_error), {len(copies)} more nights, held out with their night"
            )
        stats = reference_stats(real + sim)
        lines = []
        teachers = None  # the server models trained here teach the edge model
        if args.models in ("server", "both"):
            line, teachers = train_server(args, real, sim, copies, training, stats, progress)
            lines.append(line)
        if args.models in ("edge", "both"):
            lines.append(train_edge(args, real, sim, copies, training, stats, progress, teachers))
    print("\n".join(lines))


@dataclass(frozen=True)
class Teachers:
    folds: list[NightModel]  # each leave-subjects-out fold's server model
    all_nights: NightModel  # the server model trained on every night


def train_server(
    args: argparse.Namespace,
    real: list[Night],
    sim: list,  # type: ignore[type-arg]
    copies: list[Night],
    training: dict[str, object],
    stats: dict[str, dict[str, object]],
    progress: Progress,
) -> tuple[str, Teachers]:
    """Registered with its held-out scores on the real nights as recorded (what promotion
    compares) and on them with a radar's heart rate (what a device sends)."""
    from model_export import registry

    server_held, fold_models = server_cv(real, sim, args.folds, progress, copies)
    on_radar = server_model.held_out(fold_models, copies or radar_grade(real)).scores()
    final = progress.add_task("server model on all nights", total=1)
    server = train_server_model(real + copies + sim, args.server_version)
    progress.advance(final)
    target = registry.new_version_dir(args.registry, args.server_version)
    registry.write_server_model(
        target,
        server,
        description=f"standardised whole-night context features ({server.feature_set}: heart-rate measures as "
        f"centred {HEART_RATE_SMOOTHING}-epoch means first, then 5-, 21- and 61-epoch "
        "centred means and spreads, night-relative levels, missingness, time since and until movement, heart-rate "
        "rank, hour-long means, position in the night) into networks whose probabilities are averaged: a "
        f"softmax classifier, and {sequence_model.AVERAGED_GRUS} networks trained from different seeds, each a "
        "dense layer, a bidirectional GRU (16 units each way) over the whole night and a softmax layer; the form "
        "chosen by `python -m model_export compare-server` and `compare-sequence`; "
        "numpy runtime, arrays from weights.npz (allow_pickle=False)",
        training_data=training,
        metrics=server_held.scores(),
        metrics_on_radar_heart_rate=on_radar,
        options={"form": SERVER_FORM, "feature_set": SERVER_FEATURES},
        reference_stats=stats,
        parent_version=args.server_parent,
    )
    figures(target, server_held, real)
    line = f"registered {args.server_version}: {_line(server_held.scores())}\non radar heart rate: {_line(on_radar)}"
    return line, Teachers(fold_models, server)


def train_edge(
    args: argparse.Namespace,
    real: list[Night],
    sim: list,  # type: ignore[type-arg]
    copies: list[Night],
    training: dict[str, object],
    stats: dict[str, dict[str, object]],
    progress: Progress,
    teachers: Teachers | None = None,
) -> str:
    from model_export import edge_model, registry

    parity_nights = simulate(args.parity_nights, progress, seed=1)
    lookahead = args.edge_lookahead
    edge_runs = edge_cv(
        real, sim, args.folds, progress, teachers.folds if teachers else (), args.edge_seeds, lookahead, copies
    )
    edge_held = edge_runs[0]  # the registered model's seed
    final = progress.add_task("edge model on all nights, parity, TFLM arena", total=1)
    teacher = teachers.all_nights if teachers else train_server_model(real + copies + sim, "teacher")
    x, targets = edge_model.mixture(real + copies + sim, teacher, lookahead)
    keras_model = edge_model.train(x, targets, epochs=EDGE_EPOCHS)
    tflite = edge_model.export_int8(keras_model, x)
    px, _ = edge_model.mixture(parity_nights)
    parity = parity_report(keras_model, tflite, px)
    arena = edge_model.tflm_min_arena_bytes(tflite, px[0])
    progress.advance(final)
    macs = edge_model.multiply_accumulates(keras_model)
    number = registry.version_number(args.edge_version)
    budget = {
        "flash_bytes": len(tflite),
        "tensor_arena_bytes": arena,
        "multiply_accumulates": macs,
        "operations": 2 * macs,
        "operators": edge_model.operator_names(tflite),
        # TFLM reference int8 kernels on an Xtensa LX6 at 240 MHz, assumed ~10 cycles
        # per multiply-accumulate including requantisation; ESP-NN kernels are faster.
        "estimated_cycles": 10 * macs,
        "window_epochs": edge_model.WINDOW,
        "window_codes_bytes": edge_model.WINDOW * len(FEATURE_NAMES),
        "input_rows": edge_model.INPUT_ROWS,  # the window and the night so far
    }
    target = registry.new_version_dir(args.registry, args.edge_version)
    registry.write_edge_model(
        target,
        args.edge_version,
        tflite,
        edge_model.float_weights(keras_model),
        description=f"causal MLP over the last {edge_model.WINDOW} epochs of 1-byte feature codes, each against "
        "the night so far (the mean code of every value since the night began) and reduced to "
        f"{edge_model.PER_EPOCH} learnt features (the newest {edge_model.RECENT} epochs one by one, the rest as "
        f"{edge_model.POOL}-epoch means), distilled from the server "
        f"model (target {edge_model.DISTILL:.0%} its whole-night probabilities, the rest PSG stages), its weights "
        f"a moving average of the training steps' (momentum {edge_model.EMA_MOMENTUM}); "
        + (
            f"each epoch staged {lookahead} epochs late, from the window ending {lookahead} epochs after it; "
            if lookahead
            else ""
        )
        + "full-integer int8 TFLite for TensorFlow Lite Micro",
        version_number=number,
        training_data=training,
        metrics=edge_held.scores(),
        budget=budget,
        lookahead_epochs=lookahead,
        parity=parity,
        reference_stats=stats,
        parent_version=args.edge_parent,
    )
    figures(target, edge_held, real)
    write_firmware_array(args.firmware_dir, target, args.edge_version, number, arena, lookahead, tflite)
    line = f"registered {args.edge_version}: {_line(edge_held.scores(), 'edge_')}"
    if len(edge_runs) > 1:
        line += "\n" + _spread([held.scores() for held in edge_runs], "edge_")
    return line


def parity_report(keras_model, tflite: bytes, windows: np.ndarray) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Float Keras vs LiteRT int8 vs TFLM int8 on the same device-like inputs."""
    from model_export import edge_model

    float_stages = edge_model.logits_model(keras_model).predict(windows.astype(np.float32), verbose=0).argmax(1)
    litert, _ = edge_model.litert_predict(tflite, windows)
    tflm = edge_model.tflm_predict(tflite, windows)
    return {
        "epochs": len(windows),
        "int8_vs_float_stage_agreement": round(float((tflm.argmax(1) == float_stages).mean()), 5),
        "tflm_vs_litert_stage_agreement": round(float((tflm.argmax(1) == litert.argmax(1)).mean()), 5),
        "tflm_vs_litert_identical_outputs": round(float((tflm == litert).all(axis=1).mean()), 5),
        "tflm_vs_litert_max_lsb": int(np.abs(tflm.astype(int) - litert.astype(int)).max()),
    }


def write_firmware_array(
    firmware_dir: Path, model_dir: Path, version: str, number: int, arena: int, lookahead: int, tflite: bytes
) -> None:
    from model_export import carray, edge_model
    from noctis_contract.night_model import sha256_file

    header, source = carray.to_c(
        tflite,
        source=f"model_export/registry/{version}/model.tflite",
        sha256=sha256_file(model_dir / "model.tflite"),
        version=number,
        arena=arena,
        window=edge_model.WINDOW,
        lookahead=lookahead,
    )
    (firmware_dir / "include").mkdir(parents=True, exist_ok=True)
    (firmware_dir / "src").mkdir(parents=True, exist_ok=True)
    (firmware_dir / "include" / "noctis_model_data.h").write_text(header)
    (firmware_dir / "src" / "noctis_model_data.cpp").write_text(source)


HYPNOGRAM_NIGHT = 0  # the first real night: shown as its cross-validation fold predicted it


def figures(target: Path, held: server_model.HeldOut, real: list[Night]) -> None:
    """Confusion matrix and a held-out hypnogram beside the manifest, then the card."""
    from model_export import card

    version = target.name
    card.confusion_png(
        server_model.confusion(held.truth, held.predicted),
        f"{version}: held-out confusion (row-normalised)",
        target / "confusion.png",
    )
    night = real[HYPNOGRAM_NIGHT]
    if held.probabilities is not None:
        bins = server_model.calibration(held.truth, held.probabilities)
        error = server_model.expected_calibration_error(bins)
        card.calibration_png(bins, f"{version}: held-out calibration (ECE {error:.3f})", target / "calibration.png")
    card.hypnogram_png(
        night.stages,
        {version: held.nights[HYPNOGRAM_NIGHT]},
        f"subject {night.subject}, predicted by a model that never saw this night",
        target / "hypnogram.png",
    )
    card.write_card_from_manifest(target)


def render_card(args: argparse.Namespace) -> None:
    """Rewrite a registered version's MODEL_CARD.md from its manifest."""
    from model_export import card

    print(f"wrote {card.write_card_from_manifest(args.registry / args.version)}")


def export(args: argparse.Namespace) -> None:
    """Regenerate the firmware's C array from a registered edge model."""
    target = args.registry / args.edge_version
    manifest = json.loads((target / "manifest.json").read_text())
    write_firmware_array(
        args.firmware_dir,
        target,
        args.edge_version,
        manifest["version_number"],
        manifest["budget"]["tensor_arena_bytes"],
        manifest.get("lookahead_epochs", 0),  # 0 for models registered before lookaheads
        (target / "model.tflite").read_bytes(),
    )
    print(f"wrote {args.firmware_dir}/include/noctis_model_data.h and src/noctis_model_data.cpp")


COMPARED_FORMS = (
    {"kind": "logistic", "smooth": False},
    {"kind": "logistic", "smooth": True},
    {"kind": "mlp", "smooth": False},
    {"kind": "mlp", "smooth": True},
    {"kind": "logistic", "smooth": False, "class_weight": 0.5},
    {"kind": "logistic", "smooth": False, "class_weight": 1.0},
)


# The columns of the compare- commands' tables: score name, header.
COMPARED_SCORES = {
    "kappa4": "kappa4",
    "acc3": "acc3",
    "sleepwake_acc": "sleep/wake acc",
    "wake_specificity": "wake specificity",
    "expected_calibration_error": "calibration error",
}


def compare_server(args: argparse.Namespace) -> None:
    """Measure the candidate server-model forms on held-out subjects."""
    forms = [([f["kind"], str(f["smooth"]), str(f.get("class_weight", 0.0))], f) for f in COMPARED_FORMS]
    _compare(args, ["form", "smoothing", "class weight"], forms)


@dataclass(frozen=True)
class SequenceParts:
    """Every network compare-sequence mixes, trained once per fold: the registered
    form's own (the logistic form and its BiGRUs), then a TCN. predict_proba gives each
    one's probabilities side by side, (n, 4 * len(SEQUENCE_PARTS))."""

    models: list[server_model.Stager]

    @classmethod
    def train(cls, nights: Sequence[server_model.LabelledNight], version: str, feature_set: str) -> SequenceParts:
        registered = sequence_model.train_averaged(nights, version, feature_set)
        alone = [replace(registered, networks=(network,)) for network in registered.networks]
        return cls([*alone, sequence_model.train(nights, version, "tcn", feature_set)])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.hstack([model.predict_proba(features) for model in self.models])


GRUS = [f"bigru seed+{k}" for k in range(sequence_model.AVERAGED_GRUS)]
SEQUENCE_PARTS = ["logistic", *GRUS, "tcn"]
# Rows of compare-sequence: each a vote per network, the probabilities averaged by it.
SEQUENCE_MIXES: dict[str, dict[str, int]] = {
    "logistic (server-3's form)": {"logistic": 1},
    "tcn": {"tcn": 1},
    "bigru": {GRUS[0]: 1},
    "logistic+bigru averaged (server-4, server-5)": {"logistic": 1, GRUS[0]: 1},
    **{f"logistic+bigru of seed +{k} averaged": {"logistic": 1, gru: 1} for k, gru in enumerate(GRUS) if k},
    f"{len(GRUS)} bigru seeds averaged": dict.fromkeys(GRUS, 1),
    "logistic 1/4 + bigru 3/4": {"logistic": 1, GRUS[0]: 3},
    f"logistic 1/2 + {len(GRUS)} bigru seeds 1/2": {"logistic": len(GRUS), **dict.fromkeys(GRUS, 1)},
    f"{SERVER_FORM} (server-6, the registered form)": {"logistic": 1, **dict.fromkeys(GRUS, 1)},
}


def compare_sequence(args: argparse.Namespace) -> None:
    """Measure whole-night sequence models, and mixes of them with the logistic form,
    leave-subjects-out on the same folds as the registered form."""
    with Progress() as progress:
        real = load_real(args.data, progress)
        sim = simulate(args.sim_nights, progress)
        task = progress.add_task("networks: leave-subjects-out", total=args.folds)
        held = server_model.leave_subjects_out(
            real,
            args.folds,
            extra_training=sim,
            on_fold=lambda _k, _model: progress.advance(task),
            trainer=SequenceParts.train,
            feature_set=SERVER_FEATURES,
        )
    assert held.probabilities is not None
    parts = held.probabilities.reshape(len(held.truth), len(SEQUENCE_PARTS), -1)
    rows = []
    for label, votes in SEQUENCE_MIXES.items():
        weights = np.array([votes.get(part, 0) for part in SEQUENCE_PARTS], dtype=np.float64)
        mixed = np.einsum("p,nps->ns", weights / weights.sum(), parts)
        mix = server_model.HeldOut(held.truth, mixed.argmax(axis=1), mixed[:, 0], {}, mixed).scores()
        rows.append([label, *(f"{mix[name]:.3f}" for name in COMPARED_SCORES)])
    _table(["form", *COMPARED_SCORES.values()], rows)


def _compare(args: argparse.Namespace, label_headers: list[str], forms: list[tuple[list[str], dict]]) -> None:  # type: ignore[type-arg]
    """Each form measured leave-subjects-out on the same folds, printed as a Markdown table."""
    with Progress() as progress:
        real = load_real(args.data, progress)
        sim = simulate(args.sim_nights, progress)
        rows = []
        for labels, options in forms:
            task = progress.add_task(" ".join(labels), total=args.folds)
            held = server_model.leave_subjects_out(
                real,
                args.folds,
                extra_training=sim,
                on_fold=lambda _k, _model, t=task: progress.advance(t),
                **{"feature_set": SERVER_FEATURES, **options},
            )
            rows.append(labels + [f"{held.scores()[name]:.3f}" for name in COMPARED_SCORES])
    _table([*label_headers, *COMPARED_SCORES.values()], rows)


def _table(headers: list[str], rows: list[list[str]]) -> None:
    """Print as a Markdown table."""
    for row in (headers, ["---"] * len(headers), *rows):
        print("| " + " | ".join(row) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model_export")
    commands = parser.add_subparsers(dest="command", required=True)
    tr = commands.add_parser("train", help="cross-validate, train and register the server and edge models")
    tr.add_argument("--server-version", default="server-6")
    tr.add_argument("--server-parent", default="server-5")
    tr.add_argument("--edge-version", default="edge-10")
    tr.add_argument("--edge-parent", default="edge-9")
    tr.add_argument("--parity-nights", type=int, default=6)
    tr.add_argument("--models", choices=["server", "edge", "both"], default="both", help="which to train")
    tr.add_argument(
        "--radar-copies",
        action="store_true",
        help="train on each real night twice: as recorded and with a radar's heart-rate error "
        "(evaluate --radar-error both measures this recipe)",
    )
    ev = commands.add_parser("evaluate", help="leave-subjects-out benchmark on a walch2019-format directory")
    ev.add_argument(
        "--radar-error",
        choices=["held-out", "all", "both"],
        help="score the held-out real nights with the radar's measured heart-rate error "
        "(simulator.with_radar_error), as a bedside device would have recorded them, and the server model "
        "on them as recorded too; train on the nights as recorded (held-out: what the registered recipe "
        "gives on radar data), with the radar's error (all), or on both recordings of each night (both)",
    )
    ex = commands.add_parser("export", help="write the firmware C array of a registered edge model")
    ex.add_argument("--edge-version", default="edge-10")
    cs = commands.add_parser("compare-server", help="measure candidate server-model forms")
    cq = commands.add_parser(
        "compare-sequence", help="measure whole-night sequence models (TCN, BiGRUs) and mixes of them"
    )
    cd = commands.add_parser("card", help="rewrite a registered version's model card from its manifest")
    cd.add_argument("version")
    for sub in (tr, ev, cs, cq):
        sub.add_argument("--data", type=Path, default=DEFAULT_DATA)
        sub.add_argument("--folds", type=int, default=7)
        sub.add_argument("--sim-nights", type=int, default=40)
    for sub in (tr, ev):
        sub.add_argument(
            "--edge-seeds",
            type=int,
            choices=range(1, 11),
            metavar="N",
            default=1,
            help="train the edge model from this many seeds on each fold and print their spread "
            "(the first is the registered model's; about 5 minutes each on the bundled nights)",
        )
        sub.add_argument(
            "--edge-lookahead",
            type=int,
            choices=range(0, 11),
            metavar="L",
            default=7,
            help="an edge model that stages each epoch L epochs (30 s each) late, from the window ending "
            "L epochs after it (the device holds those epochs back until their stage is known); "
            "default 7, edge-10's; 0 stages each epoch as it ends (edge-9 and before)",
        )
    for sub in (tr, ex, cd):
        sub.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    for sub in (tr, ex):
        sub.add_argument("--firmware-dir", type=Path, default=DEFAULT_FIRMWARE)
    args = parser.parse_args(argv)
    commands_by_name = {
        "train": train,
        "evaluate": evaluate,
        "export": export,
        "compare-server": compare_server,
        "compare-sequence": compare_sequence,
        "card": render_card,
    }
    commands_by_name[args.command](args)


if __name__ == "__main__":
    main()
