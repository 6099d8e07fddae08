import numpy as np

from model_export import sequence_model, server_model
from model_export.__main__ import DEFAULT_DATA, SERVER_OPTIONS
from model_export.walch import load_night, subject_ids

FEATURE_SET = SERVER_OPTIONS["feature_set"]


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
