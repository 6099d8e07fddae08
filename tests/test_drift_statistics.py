import numpy as np
import pytest

from drift_service.statistics import QUANTILES, cohen_kappa, edge_agreement, feature_psi, level, psi, stage_mix


def test_psi_is_zero_for_the_same_distribution_and_grows_with_shift():
    rng = np.random.default_rng(1)
    reference = rng.normal(60, 8, 100_000)
    quantiles = np.quantile(reference, QUANTILES)
    same = feature_psi(rng.normal(60, 8, 5000), quantiles)
    small = feature_psi(rng.normal(62, 8, 5000), quantiles)
    large = feature_psi(rng.normal(75, 8, 5000), quantiles)
    assert same < 0.02 < small < large
    assert level(same) == "stable" and level(large) == "major"


def test_psi_ignores_missing_values_and_says_unknown_without_data():
    quantiles = [1, 2, 3, 4, 5]
    assert feature_psi(np.array([np.nan, np.nan]), quantiles) is None
    assert level(None) == "unknown"
    values = np.array([np.nan, 3.0, 3.5, 2.5])
    assert feature_psi(values, quantiles) == feature_psi(values[1:], quantiles)


def test_psi_of_disjoint_distributions_is_large_but_finite():
    value = psi(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert np.isfinite(value) and value > 5


def test_kappa_matches_the_textbook_and_sklearn():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(2)
    a = rng.integers(0, 4, 1000)
    b = np.where(rng.random(1000) < 0.7, a, rng.integers(0, 4, 1000))
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(a, a) == pytest.approx(1.0)


def test_edge_agreement_counts_only_epochs_both_scored():
    edge = np.array([0, 1, 1, 2, -1, 3])
    server = np.array([0, 1, 2, 2, 1, -1])
    result = edge_agreement(edge, server)
    assert result["epochs"] == 4 and result["agreement"] == pytest.approx(0.75)


def test_stage_mix_sums_to_one():
    mix = stage_mix(np.array([0, 1, 1, 1, 2, 3, -1]))
    assert mix.sum() == pytest.approx(1.0) and mix[1] == pytest.approx(0.5)
