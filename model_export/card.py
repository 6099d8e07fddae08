"""Model cards: Markdown with the measured numbers and PNG figures beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from noctis_contract.stages import STAGE_LABELS

REFERENCES = """\
| reference | what | figure |
| --- | --- | --- |
| Walch et al. 2019 (31 subjects, motion + HR + clock) | sleep/wake accuracy | 0.90 |
| Walch et al. 2019 | wake/NREM/REM accuracy | ~0.72 |
| wearable HR + motion, literature | 4-class kappa | 0.55-0.65 |
| human scorers (inter-rater) | 4-class kappa | ~0.76 |"""


def confusion_png(matrix: np.ndarray, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(matrix)):
        for j in range(len(matrix)):
            ax.text(
                j,
                i,
                f"{share[i, j]:.2f}\n({matrix[i, j]})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(4), STAGE_LABELS)
    ax.set_yticks(range(4), STAGE_LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("PSG")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibration_png(bins: list[dict[str, float]], title: str, path: Path) -> None:
    """Reliability diagram: the top stage's stated probability against how often it was right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfectly calibrated")
    ax.plot([b["mean_probability"] for b in bins], [b["accuracy"] for b in bins], marker="o", label="held out")
    for b in bins:
        ax.annotate(str(b["epochs"]), (b["mean_probability"], b["accuracy"]), fontsize=6, xytext=(3, -8),
                    textcoords="offset points")  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("probability of the predicted stage")
    ax.set_ylabel("share of epochs where it was right")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def hypnogram_png(truth: np.ndarray, predicted: dict[str, np.ndarray], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Conventional hypnogram order, top to bottom: wake, REM, light, deep.
    level = np.array([3, 1, 0, 2])
    hours = np.arange(len(truth)) / 120
    rows = 1 + len(predicted)
    fig, axes = plt.subplots(rows, 1, figsize=(9, 1.5 * rows + 0.4), sharex=True)
    for ax, (name, stages) in zip(axes, [("PSG", truth), *predicted.items()]):
        shown = np.where(stages >= 0, level[np.clip(stages, 0, 3)], np.nan)
        ax.step(hours, shown, where="post", lw=0.9)
        ax.set_yticks([3, 2, 1, 0], ["wake", "REM", "light", "deep"], fontsize=7)
        ax.set_ylabel(name, fontsize=8)
    axes[0].set_title(title, fontsize=10)
    axes[-1].set_xlabel("hours since start")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_card_from_manifest(target: Path) -> Path:
    """MODEL_CARD.md from the manifest's own numbers, beside the figures."""
    manifest = json.loads((target / "manifest.json").read_text())
    kind = manifest["kind"]
    role = "authoritative whole-night" if kind == "server" else "on-device causal int8"
    lines = [
        f"# Model card: {manifest['version']} ({kind})",
        "",
        f"The {role} Noctis sleep stager: {manifest.get('description', '')}.",
        "",
        "Every number below comes from `python -m model_export train`, which wrote this",
        "version's manifest; `python -m model_export card VERSION` rewrites this page from it.",
        "",
        "## Held-out performance",
        "",
        f"{manifest['training_data']['evaluation']}.",
        "",
    ]
    columns = {"value": manifest["metrics"]}
    if radar := manifest.get("metrics_on_radar_heart_rate"):  # a server model scored on a radar's too
        columns = {"heart rate as recorded": manifest["metrics"], "with a radar's error": radar}
    lines += ["| " + " | ".join(["metric", *columns]) + " |", "| " + " | ".join(["---"] * (len(columns) + 1)) + " |"]
    lines += [
        "| " + " | ".join([name, *(f"{scores[name]:.3f}" for scores in columns.values())]) + " |"
        for name in manifest["metrics"]
    ]
    lines += ["", "For comparison (not the same subjects or sensors):", "", REFERENCES, "", "## Training data", ""]
    lines += [f"- **{k}**: {v}" for k, v in manifest["training_data"].items()]
    for section in ("budget", "parity"):
        if section in manifest:
            lines += ["", f"## {section.title()}", ""]
            lines += [f"- **{k}**: {v}" for k, v in manifest[section].items()]
    lines += [
        "",
        "## Figures",
        "",
        "![held-out confusion matrix](confusion.png)",
        "",
        "![held-out hypnogram](hypnogram.png)",
        "",
    ]
    if (target / "calibration.png").exists():
        lines += ["![held-out calibration: stated probability against accuracy](calibration.png)", ""]
    lines += [
        "Data: Walch et al. 2019 (PhysioNet, ODC-By 1.0); see model_export/data/README.md.",
    ]
    path = target / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n")
    return path
