import json
import re
import shutil
import subprocess
import sys

from model_export.__main__ import DEFAULT_DATA
from model_export.walch import load_night, subject_ids
from noctis_contract.night_model import load_night_model
from tests.factories import bundled_version


def copy_first_nights(directory, count=4):  # type: ignore[no-untyped-def]
    """A walch2019-format directory of the bundled data's first nights: what the CLI
    runs on in minutes instead of the half hour and more the 21 nights take."""
    for subject in subject_ids(DEFAULT_DATA)[:count]:
        for path in DEFAULT_DATA.glob(f"{subject}_*"):
            shutil.copy(path, directory)


def test_evaluate_prints_the_benchmark_lines_for_any_walch_directory(tmp_path):
    """And with --edge-seeds, the spread of the edge model's scores over its training seeds;
    --edge-lookahead and --radar-error are recorded with them, and with --radar-error the
    server model's scores on the nights as recorded too."""
    copy_first_nights(tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_export",
            "evaluate",
            "--data",
            str(tmp_path),
            "--folds",
            "2",
            "--sim-nights",
            "2",
            "--edge-seeds",
            "2",
            "--edge-lookahead",
            "3",
            "--radar-error",
            "both",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    recorded_line, spread_line, server_line, edge_line = lines[-4:]
    report = lines[lines.index("{") : lines.index("}") + 1]  # the JSON, after the progress bars
    summary = json.loads("\n".join(report))
    assert (summary["edge_lookahead"], summary["radar_error"]) == (3, "both")
    number = r"(0|1)\.\d{3}|-0\.\d{3}"
    keys = ("kappa4", "kappa3", "acc3", "sleepwake_acc", "sleepwake_kappa")
    assert re.fullmatch(" ".join(f"{k}=({number})" for k in keys), server_line), server_line
    recorded = summary["server_on_recorded_heart_rate"]
    assert recorded_line == " ".join(f"recorded_{k}={recorded[k]:.3f}" for k in keys)
    assert recorded != summary["server"]  # the same fold models, other heart rates
    edge_keys = (*keys, "server_agreement")  # the edge model's stages against the server model's
    assert re.fullmatch(" ".join(f"edge_{k}=({number})" for k in edge_keys), edge_line), edge_line
    spread = re.fullmatch(
        "over 2 seeds: "
        + " ".join(f"edge_{k} mean=(.+) min=(.+) max=(.+)" for k in ("kappa4", "acc3", "agreement_with_server")),
        spread_line,
    )
    assert spread, spread_line
    values = [float(v) for v in spread.groups()]
    for score in range(3):
        mean, low, high = values[3 * score : 3 * score + 3]
        assert low <= mean <= high
    first_seed = dict(re.findall(r"edge_(\w+)=(\S+)", edge_line))
    assert float(spread[2]) <= float(first_seed["kappa4"]) <= float(spread[3])  # the first seed is one of them


def test_evaluate_refuses_a_directory_without_nights(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "model_export", "evaluate", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "no *_cleaned_psg.out" in result.stderr


def test_train_refuses_a_registered_version_before_training():
    edge = bundled_version("edge")
    result = subprocess.run(
        [sys.executable, "-m", "model_export", "train", "--models", "edge", "--edge-version", edge],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and f"{edge} exists: a registered version is never overwritten" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_registers_a_server_model_scored_on_both_kinds_of_heart_rate(tmp_path):
    """train --radar-copies: trained on each night as recorded and with a radar's heart
    rate, registered pickle-free with held-out scores on both, its card showing both."""
    data = tmp_path / "data"
    data.mkdir()
    copy_first_nights(data)
    registry = tmp_path / "registry"
    result = subprocess.run(
        [
            *(sys.executable, "-m", "model_export", "train", "--models", "server", "--radar-copies"),
            *("--server-version", "server-99", "--registry", str(registry), "--data", str(data)),
            *("--folds", "2", "--sim-nights", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    manifest = json.loads((registry / "server-99" / "manifest.json").read_text())
    recorded, radar = manifest["metrics"], manifest["metrics_on_radar_heart_rate"]
    assert recorded.keys() == radar.keys() and recorded != radar
    assert "4 more nights" in manifest["training_data"]["radar_copies"]
    keys = ("kappa4", "kappa3", "acc3", "sleepwake_acc", "sleepwake_kappa")
    assert result.stdout.strip().splitlines()[-1] == "on radar heart rate: " + " ".join(
        f"{k}={radar[k]:.3f}" for k in keys
    )
    card = (registry / "server-99" / "MODEL_CARD.md").read_text()
    assert f"| kappa4 | {recorded['kappa4']:.3f} | {radar['kappa4']:.3f} |" in card
    model, _ = load_night_model(registry / "server-99")
    assert model.predict_proba(load_night(data, subject_ids(data)[0]).features).shape[1] == 4


def test_compare_server_prints_one_row_a_form_on_the_same_folds(tmp_path):
    from model_export.__main__ import COMPARED_FORMS

    copy_first_nights(tmp_path)
    command = ["compare-server", "--data", str(tmp_path), "--folds", "2", "--sim-nights", "2"]
    result = subprocess.run(
        [sys.executable, "-m", "model_export", *command], capture_output=True, text=True, timeout=600, check=True
    )
    table = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert table[0] == (
        "| form | smoothing | class weight | kappa4 | acc3 | sleep/wake acc | wake specificity | calibration error |"
    )
    assert table[1] == "| --- | --- | --- | --- | --- | --- | --- | --- |"
    assert [row.split(" | ")[:3] for row in table[2:]] == [
        [f"| {f['kind']}", str(f["smooth"]), str(f.get("class_weight", 0.0))] for f in COMPARED_FORMS
    ]
    assert all(re.fullmatch(r"-?[01]\.\d{3}", cell) for row in table[2:] for cell in row.strip("| ").split(" | ")[3:])
