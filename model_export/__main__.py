"""python -m model_export train-server | evaluate"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from rich.progress import Progress

from model_export import server_model
from model_export.registry import write_server_model
from model_export.walch import load_night, subject_ids
from noctis_contract.features import FEATURE_NAMES

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE / "data" / "walch2019"
DEFAULT_REGISTRY = HERE / "registry"


def _load(data_dir: Path, progress: Progress) -> list:  # type: ignore[type-arg]
    subjects = subject_ids(data_dir)
    if not subjects:
        sys.exit(f"no *_cleaned_psg.out files in {data_dir}")
    task = progress.add_task("loading nights", total=len(subjects))
    nights = []
    for subject in subjects:
        nights.append(load_night(data_dir, subject))
        progress.advance(task)
    return nights


def _reference_stats(nights: list) -> dict[str, object]:  # type: ignore[type-arg]
    stacked = np.vstack([n.features for n in nights])
    stats: dict[str, object] = {}
    for i, name in enumerate(FEATURE_NAMES):
        column = stacked[:, i]
        seen = column[~np.isnan(column)]
        stats[name] = {
            "missing_ratio": round(float(np.isnan(column).mean()), 6),
            **(
                {
                    "mean": float(seen.mean()),
                    "std": float(seen.std()),
                    "quantiles": [float(q) for q in np.quantile(seen, [0.05, 0.25, 0.5, 0.75, 0.95])],
                }
                if len(seen)
                else {}
            ),
        }
    return stats


def train_server(args: argparse.Namespace) -> None:
    with Progress() as progress:
        nights = _load(args.data, progress)
        task = progress.add_task("leave-subjects-out folds", total=args.folds)
        metrics = server_model.leave_subjects_out(nights, args.folds, lambda _: progress.advance(task))
        final = progress.add_task("training on all subjects", total=1)
        model = server_model.train(nights, version=args.version)
        progress.advance(final)
    labels = np.concatenate([n.stages for n in nights])
    target = write_server_model(
        args.registry,
        model,
        metrics={k: round(v, 4) for k, v in metrics.items()},
        training_data={
            "source": str(args.data.name),
            "subjects": len(nights),
            "epochs_scored": int((labels >= 0).sum()),
            "evaluation": f"leave-subjects-out, {args.folds} folds",
        },
        reference_stats=_reference_stats(nights),
        parent_version=args.parent,
    )
    print(f"registered {model.version} at {target}")
    print(" ".join(f"{k}={v:.3f}" for k, v in metrics.items()))


def evaluate(args: argparse.Namespace) -> None:
    with Progress() as progress:
        nights = _load(args.data, progress)
        task = progress.add_task("leave-subjects-out folds", total=args.folds)
        metrics = server_model.leave_subjects_out(nights, args.folds, lambda _: progress.advance(task))
    print(" ".join(f"{k}={metrics[k]:.3f}" for k in ("kappa4", "kappa3", "acc3", "sleepwake_acc", "sleepwake_kappa")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model_export")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train-server", help="train, cross-validate and register the server model")
    train.add_argument("--version", required=True, help="e.g. server-2")
    train.add_argument("--parent", default=None, help="the version this one replaces")
    ev = commands.add_parser("evaluate", help="leave-subjects-out evaluation on a walch2019-format directory")
    for sub in (train, ev):
        sub.add_argument("--data", type=Path, default=DEFAULT_DATA)
        sub.add_argument("--folds", type=int, default=7)
    train.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    args = parser.parse_args(argv)
    {"train-server": train_server, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
