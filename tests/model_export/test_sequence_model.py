import json
from dataclasses import replace

import numpy as np
import pytest

from model_export import registry, sequence_model, server_model
from model_export.__main__ import DEFAULT_DATA, SERVER_FEATURES
from model_export.walch import load_night, subject_ids
from noctis_contract.night_model import MODEL_FORMAT, NETWORKS_FORMAT, load_night_model

FEATURE_SET = SERVER_FEATURES


def real_nights(count: int):  # type: ignore[no-untyped-def]
    return [load_night(DEFAULT_DATA, subject) for subject in subject_ids(DEFAULT_DATA)[:count]]


def test_sequence_models_are_measured_on_held_out_subjects_like_the_server_model():
    nights = real_nights(4)
    held = server_model.leave_subjects_out(
        nights, 2, trainer=sequence_model.train, kind="tcn", feature_set=FEATURE_SET, epochs=2
    )
    assert sorted(held.nights) == [0, 1, 2, 3]
    assert all(len(held.nights[i]) == len(n.stages) for i, n in enumerate(nights))
    assert len(held.truth) == sum(int((n.stages >= 0).sum()) for n in nights) == len(held.probabilities)
    assert np.allclose(held.probabilities.sum(axis=1), 1, atol=1e-5)


def test_the_tcn_reads_31_epochs_either_side_and_no_further():
    model = sequence_model.train(real_nights(2), version="test", kind="tcn", feature_set=FEATURE_SET, epochs=1)
    night = model.standardised(real_nights(1)[0].features)
    changed = night.copy()
    changed[500:] += 1.0  # everything the network is told from epoch 500 on
    before, after = (model.network.predict(x[None], verbose=0)[0] for x in (night, changed))
    moved = np.abs(after - before).max(axis=1) > 1e-6
    assert moved[500 - 31 : 500].all()  # it reads the next 31 epochs
    assert not moved[: 500 - 31].any()  # and no further


def test_a_bigru_runs_on_the_servers_numpy_runtime_as_keras_runs_it(tmp_path):
    nights = real_nights(2)
    trained = sequence_model.train(nights, version="test", kind="bigru", feature_set=FEATURE_SET, epochs=1)
    model = sequence_model.night_model(trained, "server-test")
    keras_probabilities = trained.predict_proba(nights[0].features)
    assert np.abs(model.predict_proba(nights[0].features) - keras_probabilities).max() < 1e-5
    # Registered and loaded back (weights.npz, no pickle), it is the same model.
    registry.write_server_model(registry.new_version_dir(tmp_path, "server-test"), model, description="test")
    loaded, manifest = load_night_model(tmp_path / "server-test")
    assert manifest["format"] == NETWORKS_FORMAT
    assert np.array_equal(loaded.predict_proba(nights[1].features), model.predict_proba(nights[1].features))
    # A manifest that calls it the plain form is refused: an older server cannot run it.
    (tmp_path / "server-test" / "manifest.json").write_text(
        json.dumps({**manifest, "format": MODEL_FORMAT}), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="the weights are a"):
        load_night_model(tmp_path / "server-test")


def test_the_registered_form_averages_its_networks_each_as_it_runs_alone():
    """The server steps every BiGRU of a model together: that must give each network's
    own probabilities, averaged, and the form holds AVERAGED_GRUS different BiGRUs."""
    nights = real_nights(2)
    model = sequence_model.train_averaged(nights, "server-test", FEATURE_SET, epochs=1)
    assert [network.recurrent is not None for network in model.networks] == [False] + [
        True
    ] * sequence_model.AVERAGED_GRUS
    alone = [replace(model, networks=(network,)).predict_proba(nights[0].features) for network in model.networks]
    assert not np.allclose(alone[1], alone[2])  # seeds differ, so do the BiGRUs
    assert np.abs(model.predict_proba(nights[0].features) - np.mean(alone, axis=0)).max() < 1e-12


def test_held_out_nights_can_be_scored_as_another_sensor_measured_them():
    """evaluate --radar-error held-out: models train on the nights as recorded and are
    scored on the same nights with the radar's heart-rate error, each by its fold's model."""
    from model_export.__main__ import radar_grade

    nights = real_nights(4)
    radar = radar_grade(nights)
    models: dict[int, server_model.Stager] = {}
    clean = server_model.leave_subjects_out(nights, 2, on_fold=models.__setitem__)
    held = server_model.held_out([models[0], models[1]], radar)
    for k, fold in enumerate(server_model.folds_of(len(nights), 2)):
        for i in fold:
            assert np.array_equal(held.nights[i], models[k].predict_proba(radar[i].features).argmax(axis=1))
            assert np.array_equal(clean.nights[i], models[k].predict_proba(nights[i].features).argmax(axis=1))
    assert any(not np.array_equal(held.nights[i], clean.nights[i]) for i in range(len(nights)))


def test_a_nights_other_recording_trains_beside_it_and_is_held_out_with_it():
    """evaluate --radar-error both: each fold trains on the nights it keeps as recorded
    and as the radar would have measured them, and on neither of the held-out night's."""
    from model_export.__main__ import radar_grade

    nights = real_nights(4)
    radar = radar_grade(nights)
    sim = [replace(nights[0], features=nights[0].features + 1.0)]
    for held in server_model.folds_of(len(nights), 2):
        training = server_model.fold_training(nights, held, sim, radar)
        kept = [i for i in range(4) if i not in held]
        assert len(training) == 2 * len(kept) + 1
        for i in range(4):
            for night in (nights[i], radar[i]):
                assert any(t is night for t in training) == (i in kept)
        assert training[-1] is sim[0]
