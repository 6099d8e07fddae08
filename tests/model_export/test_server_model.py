import json
import shutil

import numpy as np
import pytest

from model_export.__main__ import DEFAULT_DATA, DEFAULT_REGISTRY
from model_export.walch import load_night
from noctis_contract.night_model import load_night_model
from tests.factories import bundled_version

SERVER = bundled_version("server")


def test_bundled_server_model_loads_and_scores_a_real_night():
    model, manifest = load_night_model(DEFAULT_REGISTRY / SERVER)
    assert manifest["kind"] == "server" and manifest["feature_schema_version"] == 1
    night = load_night(DEFAULT_DATA, "1066528")
    probabilities = model.predict_proba(night.features)
    assert probabilities.shape == (len(night.stages), 4)
    assert np.allclose(probabilities.sum(axis=1), 1)
    scored = night.stages >= 0
    # Better than always answering the most common stage on this night? It must be.
    accuracy = (probabilities.argmax(axis=1)[scored] == night.stages[scored]).mean()
    assert accuracy > 0.4


def test_a_tampered_weight_file_is_refused(tmp_path):
    copy = tmp_path / SERVER
    shutil.copytree(DEFAULT_REGISTRY / SERVER, copy)
    data = bytearray((copy / "weights.npz").read_bytes())
    data[-100] ^= 0xFF
    (copy / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_night_model(copy)


def test_a_pickled_array_never_loads(tmp_path):
    """Even with a matching hash, object arrays (pickle) are refused at load."""
    copy = tmp_path / SERVER
    shutil.copytree(DEFAULT_REGISTRY / SERVER, copy)
    with np.load(copy / "weights.npz") as arrays:
        parts = {k: arrays[k] for k in arrays.files}
    parts["prior"] = np.array([object()] * 4, dtype=object)
    np.savez(copy / "weights.npz", **parts)
    manifest = json.loads((copy / "manifest.json").read_text())
    import hashlib

    manifest["files"]["weights.npz"] = hashlib.sha256((copy / "weights.npz").read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="pickle"):
        load_night_model(copy)


def test_empty_night_and_all_missing_inputs_are_handled():
    model, _ = load_night_model(DEFAULT_REGISTRY / SERVER)
    assert model.predict_proba(np.zeros((0, 15))).shape == (0, 4)
    blank = model.predict_proba(np.full((10, 15), np.nan))
    assert np.all(np.isfinite(blank)) and np.allclose(blank.sum(axis=1), 1)


def test_every_registered_server_model_still_loads_with_its_feature_set():
    from sync_server.models.service import ModelStore

    night = load_night(DEFAULT_DATA, "1066528")
    for version in ModelStore(DEFAULT_REGISTRY).registered_versions("server"):
        model, manifest = load_night_model(DEFAULT_REGISTRY / version)
        assert model.feature_set == manifest.get("feature_set", "context-v2")
        assert np.allclose(model.predict_proba(night.features).sum(axis=1), 1)


def test_epochs_since_movement_counts_and_caps():
    from noctis_contract.night_model import MOVEMENT_HORIZON, _epochs_since

    events = np.array([False, True, False, False, True, False])
    assert _epochs_since(events).tolist() == [MOVEMENT_HORIZON, 0, 1, 2, 0, 1]
    assert _epochs_since(np.zeros(3, dtype=bool)).tolist() == [MOVEMENT_HORIZON] * 3


def test_context_v4_reads_a_radars_heart_rate_closer_to_the_truth():
    from model_export.simulator import with_radar_error
    from noctis_contract.features import FEATURE_NAMES
    from noctis_contract.night_model import HEART_RATE_MEASURES, smoothed_heart_rate

    night = load_night(DEFAULT_DATA, "1066528").features
    radar = with_radar_error(night, np.random.default_rng(0))
    hr = HEART_RATE_MEASURES[0]
    raw_error = np.nanmean(np.abs(radar[:, hr] - night[:, hr]))
    smoothed_error = np.nanmean(np.abs(smoothed_heart_rate(radar)[:, hr] - smoothed_heart_rate(night)[:, hr]))
    assert smoothed_error < 0.6 * raw_error  # about 1/sqrt(5) of the radar's per-epoch error

    gappy = np.full((7, len(FEATURE_NAMES)), np.nan)
    gappy[[0, 1, 3], hr] = [60.0, 62.0, 64.0]
    heart = smoothed_heart_rate(gappy)[:, hr]
    assert heart[2] == pytest.approx(62.0)  # the mean of what the window saw: a one-epoch gap is bridged
    assert np.isnan(heart[6])  # a window with nothing seen stays missing
    other = FEATURE_NAMES.index("activity_count")
    gappy[3, other] = 5.0
    assert np.array_equal(smoothed_heart_rate(gappy)[:, other], gappy[:, other], equal_nan=True)  # untouched
