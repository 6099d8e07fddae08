"""The drift detector on simulated fleets, and its benchmark's command."""

import math
import re
import subprocess
import sys

import numpy as np
import pytest

from drift_service import detector
from model_export.simulator import Sleeper, simulate_night
from noctis_contract.features import FEATURE_NAMES

HR = FEATURE_NAMES.index("hr_mean")


def test_benjamini_hochberg_cutoff_matches_the_textbook():
    assert detector.benjamini_hochberg([0.01, 0.04, 0.03, 0.005], rate=0.05) == 0.04
    assert detector.benjamini_hochberg([0.001, 0.02, 0.5], rate=0.05) == 0.02
    assert detector.benjamini_hochberg([0.2, 0.5], rate=0.05) == 0.0


def test_night_summary_sees_a_stuck_feature_missing_values_and_the_stage_mix():
    night = simulate_night(3)
    features = night.features.copy()
    features[:, HR] = 61.0
    features[: len(features) // 4, FEATURE_NAMES.index("resp_amplitude")] = np.nan
    summary = detector.night_summary(features, night.stages, night.stages)
    assert summary["hr_mean.stuck"] == pytest.approx(math.pi / 2)  # arcsin(sqrt(1))
    assert summary["hr_std.stuck"] < 1.0
    assert math.sin(summary["resp_amplitude.missing"]) ** 2 >= 0.25
    assert summary["edge.agreement"] == pytest.approx(math.pi / 2)
    shares = [math.sin(summary[f"stage.{s}"]) ** 2 for s in ("wake", "light", "deep", "rem")]
    assert sum(shares) == pytest.approx(1.0)
    assert set(summary) == set(detector.STATISTICS)


def _fleet_nights(nights: int, faulty: str, cohort: set[str], seed: int = 7):
    """40 simulated devices in four tenants; `faulty` flat-lines its heart rate from
    night 6, the devices in `cohort` sleep with half the deep sleep from night 6."""
    rng = np.random.default_rng(seed)
    devices = {f"d{i}": (f"t{i // 10}", Sleeper.draw(rng)) for i in range(40)}
    summaries: dict[str, list[dict[str, float]]] = {name: [] for name in devices}
    for night in range(nights):
        for name, (_, sleeper) in devices.items():
            if name in cohort and night >= 6:
                sleeper = Sleeper(**{**sleeper.__dict__, "deep_scale": 0.5})
            simulated = simulate_night(int(rng.integers(2**31)), sleeper=sleeper)
            features = simulated.features.copy()
            if name == faulty and night >= 6:
                features[:, HR] = np.where(np.isnan(features[:, HR]), np.nan, 62.0)
            # The true stages stand in for both models: this test is about the statistics.
            summaries[name].append(detector.night_summary(features, simulated.stages, simulated.stages))
    return devices, summaries


def test_judge_names_a_flat_heart_rate_and_a_cohort_with_less_deep_sleep_and_spares_the_rest():
    cohort = {f"d{i}" for i in range(20, 30)}  # tenant t2
    devices, summaries = _fleet_nights(10, faulty="d3", cohort=cohort)
    b = detector.BASELINE_NIGHTS
    flagged, populations = {}, {}
    for night in range(b, 10):
        histories = [
            detector.History(n, t, summaries[n][:b], summaries[n][b : night + 1]) for n, (t, _) in devices.items()
        ]
        verdicts, tenants = detector.judge(histories)
        flagged[night] = {n: v for n, v in verdicts.items() if v.kind}
        populations[night] = {t for t, v in tenants.items() if v.kind}

    before = [night for night in range(b, 6)]
    assert all(not flagged[n] and not populations[n] for n in before), "nothing changed before night 6"
    assert flagged[6]["d3"].kind == "sensor" and flagged[6]["d3"].statistic.startswith("hr_")
    assert all(set(flagged[n]) <= {"d3"} | cohort for n in range(6, 10)), "clean devices are never flagged"
    assert any("t2" in populations[n] for n in range(6, 10)), "the cohort's population shift is found"
    assert all(populations[n] <= {"t2"} for n in range(6, 10))


def test_a_device_is_judged_against_its_own_spread_not_only_the_fleets():
    """A device whose statistic wanders more than most is not flagged for its usual wandering."""
    baseline = [{"hr_mean.median.early": v} for v in (4.0, 4.2, 3.8, 4.1)]
    fleet = np.full(len(detector.STATISTICS), 0.01)
    i = detector.STATISTICS.index("hr_mean.median.early")
    usual = detector.t_scores([{"hr_mean.median.early": 4.3}], baseline, fleet)[i]
    steady = detector.t_scores([{"hr_mean.median.early": 4.3}], [{"hr_mean.median.early": 4.0}] * 4, fleet)[i]
    assert abs(usual) < 3 < abs(steady)


def test_the_benchmark_command_prints_its_figures():
    result = subprocess.run(
        [sys.executable, "-m", "drift_service", "bench", "--devices", "100", "--per-scenario", "3", "--seed", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = result.stdout.strip().splitlines()
    assert {line.split()[0] for line in lines[:7]} == {
        "hr_flatline",
        "radar_no_presence",
        "accel_detached",
        "gain_drift",
        "quantization_bug",
        "edge_disagrees",
        "less_deep",
    }
    last = re.fullmatch(r"detection_rate=([\d.]+) false_alarm_rate=([\d.]+) median_delay_nights=([\d.]+)", lines[-1])
    assert last, lines[-1]
    detection, false_alarms, delay = (float(x) for x in last.groups())
    assert detection >= 0.9 and false_alarms <= 0.05 and delay <= 1
