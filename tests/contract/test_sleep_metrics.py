import pytest

from noctis_contract.sleep_metrics import hypnogram_svg, summarize


def test_a_textbook_night():
    # 10 min awake, asleep (light 20 min, deep 20 min, REM 10 min), 3 min awake, light 7 min, 5 min awake.
    stages = [0] * 20 + [1] * 40 + [2] * 40 + [3] * 20 + [0] * 6 + [1] * 14 + [0] * 10
    m = summarize(stages)
    assert m["time_in_bed_min"] == 75
    assert m["sleep_latency_min"] == 10
    assert m["total_sleep_min"] == 57
    assert m["waso_min"] == 3  # the final awakening is after the last sleep epoch
    assert m["rem_latency_min"] == 40
    assert m["awakenings"] == 1
    assert m["sleep_efficiency"] == pytest.approx(57 / 75, abs=1e-4)
    assert m["deep_min"] == 20 and m["deep_pct"] == pytest.approx(35.1)


def test_a_sleepless_night_and_an_empty_one():
    assert summarize([0] * 10)["total_sleep_min"] == 0.0
    assert summarize([0] * 10)["sleep_latency_min"] is None
    assert summarize([])["sleep_efficiency"] is None


def test_hypnogram_svg_draws_one_bar_per_known_epoch():
    svg = hypnogram_svg([0, 1, 1, 2, -1, 3], "night <1>")
    assert svg.startswith("<svg") and svg.count("<rect") == 1 + 5
    assert "night &lt;1&gt;" in svg
