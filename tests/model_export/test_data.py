import numpy as np
import pytest
from rich.progress import Progress

from model_export.__main__ import DEFAULT_DATA, load_real, simulate
from model_export.simulator import radar_vitals_error, simulate_night, variability_error, with_radar_error
from model_export.walch import load_all
from noctis_contract.features import FEATURE_NAMES, FEATURES, as_sent, indices, validate_epoch

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
# Radar-measured features the watch data cannot stand in for (it has heart rate).
RADAR = [FEATURE_NAMES[i] for i in indices("radar") if not FEATURE_NAMES[i].startswith(("hr_", "ibi_"))]


def test_walch_nights_match_the_published_label_counts():
    nights = load_all(DEFAULT_DATA)
    stages = np.concatenate([n.stages for n in nights])
    # README: unscored 219, wake 1827, N1+N2 1252+8335, N3+N4 2287+166, REM 3866.
    assert len(nights) == 21
    assert np.bincount(stages + 1).tolist() == [219, 1827, 9587, 2453, 3866]


def test_walch_radar_features_are_missing_not_zero():
    night = load_all(DEFAULT_DATA)[0]
    for name in RADAR:
        assert np.isnan(night.features[:, COL[name]]).all(), name
    assert np.nanmax(night.features[:, COL["movement_events"]]) <= 2
    assert np.isfinite(night.features[:, COL["hr_mean"]]).mean() > 0.5
    for row in night.features[:50]:
        assert validate_epoch([None if np.isnan(v) else float(v) for v in row]) is None


def test_simulator_is_deterministic_and_inside_the_schema():
    a, b = simulate_night(7), simulate_night(7)
    assert np.array_equal(a.stages, b.stages)
    assert np.array_equal(np.isnan(a.features), np.isnan(b.features))
    assert np.allclose(np.nan_to_num(a.features), np.nan_to_num(b.features))
    lo = np.array([f.valid_min for f in FEATURES])
    hi = np.array([f.valid_max for f in FEATURES])
    seen = ~np.isnan(a.features)
    assert np.all((a.features >= lo) | ~seen) and np.all((a.features <= hi) | ~seen)


def test_simulated_architecture_looks_like_a_night():
    nights = [simulate_night(seed) for seed in range(30)]
    stages = np.concatenate([n.stages for n in nights])
    share = np.bincount(stages, minlength=4) / len(stages)
    assert 0.03 < share[0] < 0.15  # wake
    assert 0.45 < share[1] < 0.65  # light
    assert 0.10 < share[2] < 0.25  # deep
    assert 0.15 < share[3] < 0.30  # REM
    first_half = np.concatenate([n.stages[: len(n.stages) // 2] for n in nights])
    second_half = np.concatenate([n.stages[len(n.stages) // 2 :] for n in nights])
    assert (first_half == 2).mean() > 2 * (second_half == 2).mean()  # deep sleep early
    assert (second_half == 3).mean() > 1.3 * (first_half == 3).mean()  # REM late
    # Sensors drop out: missing values exist, and they are NaN, never zero.
    assert np.isnan(np.vstack([n.features for n in nights])).any()


def test_simulated_heart_rate_separates_stages_as_the_literature_says():
    nights = [simulate_night(seed) for seed in range(20)]
    hr = np.concatenate([n.features[:, COL["hr_mean"]] for n in nights])
    stages = np.concatenate([n.stages for n in nights])
    by_stage = [np.nanmean(hr[stages == s]) for s in range(4)]
    assert by_stage[2] < by_stage[1] < by_stage[3] < by_stage[0]  # deep < light < REM < wake


def test_models_learn_from_the_features_a_device_sends():
    """The server scores the contract's codes; models that trained on the floats beyond
    the codes' ranges (the Walch nights' heart-rate variability above 200 ms) failed on
    them. Every night train and evaluate read is already what a device would send."""
    with Progress(disable=True) as progress:
        nights = [*load_real(DEFAULT_DATA, progress)[:3], *simulate(2, progress)]
    raw = load_all(DEFAULT_DATA)[0].features
    assert not np.array_equal(as_sent(raw), raw, equal_nan=True)  # the raw data is not
    for night in nights:
        assert np.array_equal(as_sent(night.features), night.features, equal_nan=True)


def test_simulated_radar_error_matches_the_cited_studies():
    """Mean absolute errors of 3.2 bpm and 0.8 breaths/min at the best distance (Mura et
    al. 2026), larger closer and farther, variability ~15-30 % off (simulator docstring)."""
    rng = np.random.default_rng(5)
    many = 200_000

    def mean_absolute_errors(distance: float) -> tuple[float, float]:
        hr, resp = radar_vitals_error(rng, np.full(many, distance))
        return float(np.abs(hr).mean()), float(np.abs(resp).mean())

    hr_best, resp_best = mean_absolute_errors(0.7)
    assert abs(hr_best - 3.2) < 0.05 and abs(resp_best - 0.8) < 0.02
    assert mean_absolute_errors(0.8) == pytest.approx((hr_best, resp_best), rel=0.02)  # flat inside 60-100 cm
    for distance in (0.4, 1.3, 1.6):  # the U: worse too close and too far
        hr, resp = mean_absolute_errors(distance)
        assert hr > 1.15 * hr_best and resp > 1.15 * resp_best
    assert mean_absolute_errors(1.6)[0] > mean_absolute_errors(1.3)[0]
    off = np.abs(variability_error(rng, many) - 1).mean()
    assert 0.15 <= off <= 0.30


def test_a_watch_night_given_radar_error_changes_only_its_heart_rate_features():
    """evaluate --radar-error: a real night's heart rate as a bedside radar would have
    measured it; every other feature, and every missing value, as it was."""
    night = load_all(DEFAULT_DATA)[0]
    radar = with_radar_error(night.features, np.random.default_rng(1))
    hr = [COL[name] for name in ("hr_mean", "hr_std", "ibi_rmssd")]
    others = [i for i in range(len(FEATURE_NAMES)) if i not in hr]
    assert np.array_equal(radar[:, others], night.features[:, others], equal_nan=True)
    assert np.array_equal(np.isnan(radar), np.isnan(night.features))
    seen = ~np.isnan(night.features[:, hr[0]])
    off = np.abs(radar[seen, hr[0]] - night.features[seen, hr[0]]).mean()
    assert 3.2 <= off <= 6.0  # the studies' 3.2 bpm at best, more at a bedside's 0.8-1.6 m
    ratio = radar[seen][:, hr[1:]] / night.features[seen][:, hr[1:]]
    assert 0.15 <= np.nanmean(np.abs(ratio - 1)) <= 0.30
