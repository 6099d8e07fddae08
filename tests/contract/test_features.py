import math

import numpy as np
import pytest

from noctis_contract.features import FEATURES, MISSING_CODE, N_FEATURES, dequantize, quantize, validate_epoch


def test_schema_has_fifteen_features_with_sane_ranges():
    assert N_FEATURES == 15
    assert len({f.name for f in FEATURES}) == 15
    for f in FEATURES:
        assert f.valid_min <= f.quant_min < f.quant_max <= f.valid_max, f.name


def test_quantize_round_trip_within_half_a_step():
    rng = np.random.default_rng(1)
    lo = np.array([f.quant_min for f in FEATURES])
    hi = np.array([f.quant_max for f in FEATURES])
    values = rng.uniform(lo, hi, size=(5000, N_FEATURES))
    back = dequantize(quantize(values))
    steps = np.array([f.step for f in FEATURES])
    assert np.all(np.abs(back - values) <= steps / 2 + 1e-9)


def test_codes_survive_dequantize_quantize_unchanged():
    codes = np.arange(256, dtype=np.uint8)[:, None].repeat(N_FEATURES, axis=1)
    assert np.array_equal(quantize(dequantize(codes)), codes)


def test_missing_is_255_and_saturation_never_reaches_it():
    values = np.full((1, N_FEATURES), np.nan)
    assert np.all(quantize(values) == MISSING_CODE)
    huge = np.array([[f.valid_max for f in FEATURES]])
    assert np.all(quantize(huge) == 254)
    tiny = np.array([[f.valid_min for f in FEATURES]])
    assert np.all(quantize(tiny) == 0)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ([60.0] * 14, "expected 15 features"),
        ([math.nan] + [0.5] * 14, "not a finite number"),
        ([math.inf] + [0.5] * 14, "not a finite number"),
        ([500.0] + [0.5] * 14, "hr_mean=500 is outside its valid range"),
    ],
)
def test_validate_epoch_names_the_problem(values, fragment):
    assert fragment in validate_epoch(values)


def test_validate_epoch_accepts_missing_values():
    assert validate_epoch([None] * 15) is None
