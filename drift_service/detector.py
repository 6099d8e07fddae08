"""Drift verdicts: is this device's night unlike its own first nights, and why?

A night is compared with the same device's baseline (its first `BASELINE_NIGHTS` nights
of at least `MIN_EPOCHS` epochs), not with the training population: people differ far
more from each other than a healthy sensor differs from night to night, which is why a
PSI against the training data called every clean simulated device `major`.

Each night is reduced to named statistics (`night_summary`):

- per feature: its median in each part of the night (early, middle, late: like is
  compared with like, since heart rate and movement follow the night's course) and its
  mean, both on a log scale; how often it is missing; how often two consecutive epochs
  carry the same code (a stuck sensor repeats itself);
- edge-vs-server agreement (the device's model against the authoritative one);
- the server's stage mix (the sleeper, not the sensor).

Shares are on the arcsine-square-root scale. Each statistic of the mean of the last 1,
2 and 3 judged nights becomes a t-score against the device's baseline mean, in units of
its night-to-night spread: the device's own, moderated towards the fleet's typical
spread, never below a floor. Per kind of drift (`sensor`: the features, `edge`: the
agreement, `sleep`: the stage mix) the smallest p-value, Bonferroni-corrected within
the kind; the device's smallest goes into Benjamini-Hochberg across all devices at
`FALSE_DISCOVERY_RATE`. Cohort-wide shifts too weak to see in one device (a population
with less deep sleep) are tested per tenant by adding up its devices' stage evidence.

`python -m drift_service bench` measures detection, delay and false alarms; the
constants here were chosen on its seed 1 and are reported on others (README).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from noctis_contract.features import FEATURE_NAMES, FEATURES, quantize
from noctis_contract.stages import STAGE_LABELS

BASELINE_NIGHTS = 4
MIN_EPOCHS = 480  # 4 hours: shorter nights are reported but never judged
PHASE_HOURS = (2.5, 5.0)  # early < 2.5 h <= middle < 5 h <= late
PHASES = ("early", "middle", "late")
FALSE_DISCOVERY_RATE = 0.005
PRIOR_DEGREES = 10  # how many nights' worth of evidence the fleet's spread counts for
RECENT_NIGHTS = (1, 2, 3)  # tonight alone, and with the nights before: persistent shifts add up
MIN_POPULATION = 5  # devices, for a verdict on a tenant's population
KINDS = ("sensor", "edge", "sleep")

_HOURS = FEATURE_NAMES.index("hours_since_start")
# The clock is not a sensor: its statistics describe only how long the night was.
_MEASURED = [i for i, f in enumerate(FEATURES) if f.source != "clock"]


def statistic_names() -> list[str]:
    names = []
    for i in _MEASURED:
        name = FEATURE_NAMES[i]
        names += [f"{name}.median.{phase}" for phase in PHASES]
        names += [f"{name}.mean", f"{name}.missing", f"{name}.stuck"]
    names.append("edge.agreement")
    names += [f"stage.{label}" for label in STAGE_LABELS]
    return names


STATISTICS = statistic_names()


def kind_of(statistic: str) -> str:
    group = statistic.split(".")[0]
    return {"edge": "edge", "stage": "sleep"}.get(group, "sensor")


_STAGE = np.array([name.startswith("stage.") for name in STATISTICS])
_MEDIAN = np.array([".median." in name for name in STATISTICS])
_STEP = np.array(
    [FEATURES[FEATURE_NAMES.index(name.split(".")[0])].step if m else 0.0 for name, m in zip(STATISTICS, _MEDIAN)]
)
FLOOR = 0.01  # of a mean on the log scale (1 %) and of a share on the arcsine scale
# Sleep stages come in blocks of minutes, not in independent epochs: a night's stage
# share varies like a binomial share of ~25 episodes, 1/(2 sqrt(25)) in arcsine units.
STAGE_FLOOR = 0.1


def floors(centre: np.ndarray) -> np.ndarray:
    """The smallest spread a statistic is allowed at the device's baseline level. A
    median cannot be measured finer than one quantization step (on the log scale: one
    step at that level): quiet-sleeper accelerometer medians sit on one or two codes
    and would flag a one-code wobble."""
    level = np.maximum(np.expm1(np.nan_to_num(centre, nan=0.0)), 0.0)
    step = np.log1p(level + _STEP) - np.log1p(level)
    return np.where(_MEDIAN, np.maximum(step, FLOOR), np.where(_STAGE, STAGE_FLOOR, FLOOR))


def _share(events: np.ndarray) -> float:
    """A share on the arcsine-square-root scale, where its night-to-night spread no
    longer depends on its level (0.93 -> 1.0 weighs like 0.5 -> 0.75), so spreads pooled
    over devices at different levels fit each of them. NaN for no events."""
    return float(np.arcsin(np.sqrt(events.mean()))) if len(events) else math.nan


def night_summary(features: np.ndarray, edge: np.ndarray, server: np.ndarray) -> dict[str, float]:
    """One night's statistics. features: (n, 15) values with NaN for missing, in time
    order; edge and server: (n,) stages with -1 where a side did not stage the epoch.
    A statistic that cannot be measured tonight is NaN."""
    hours = np.nan_to_num(features[:, _HOURS], nan=0.0)
    phase = np.searchsorted(PHASE_HOURS, hours, side="right")
    codes = quantize(features)
    summary: dict[str, float] = {}
    with np.errstate(all="ignore"):
        for i in _MEASURED:
            name, column = FEATURE_NAMES[i], features[:, i]
            present = ~np.isnan(column)
            for p, label in enumerate(PHASES):
                # On a log scale: people and nights differ by factors (a restless
                # sleeper moves twice as much, posture halves the breathing amplitude).
                values = np.log1p(column[present & (phase == p)])
                summary[f"{name}.median.{label}"] = float(np.median(values)) if len(values) else math.nan
            # The mean sees what a median cannot: a rare event (a movement) that stopped.
            summary[f"{name}.mean"] = float(np.log1p(column[present]).mean()) if present.any() else math.nan
            summary[f"{name}.missing"] = _share(~present)
            both = present[1:] & present[:-1]
            summary[f"{name}.stuck"] = _share((codes[1:, i] == codes[:-1, i])[both])
        compared = (edge >= 0) & (server >= 0)
        summary["edge.agreement"] = _share(edge[compared] == server[compared])
        staged = server[server >= 0]
        for s, stage in enumerate(STAGE_LABELS):
            summary[f"stage.{stage}"] = _share(staged == s)
    return summary


def _matrix(summaries: Sequence[Mapping[str, float]]) -> np.ndarray:
    return np.array([[s.get(name, math.nan) for name in STATISTICS] for s in summaries], dtype=np.float64)


def fleet_scales(baselines: Sequence[Sequence[Mapping[str, float]]]) -> np.ndarray:
    """The typical night-to-night spread of each statistic within a device: the median
    over devices of their baseline standard deviations (robust to a few odd devices)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a statistic measured on < 2 nights
        spreads = [np.nanstd(_matrix(nights), axis=0, ddof=1) for nights in baselines if len(nights) > 1]
        if not spreads:
            return np.zeros(len(STATISTICS))
        typical = np.nanmedian(np.vstack(spreads), axis=0)
    spread: np.ndarray = np.nan_to_num(typical, nan=0.0)
    return spread


def t_scores(
    recent: Sequence[Mapping[str, float]], baseline: Sequence[Mapping[str, float]], fleet: np.ndarray
) -> np.ndarray:
    """The mean of the recent nights against the device's baseline mean, in units of
    the device's own night-to-night spread moderated towards the fleet's (the
    empirical-Bayes variance of Smyth 2004: a device whose sensor is noisier than most
    is judged by its own noise, and a few baseline nights cannot fake a tiny spread).
    NaN where a statistic is unmeasured. Student's t with `degrees_of_freedom()`."""
    base = _matrix(baseline)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a statistic never measured
        centre = np.nanmean(base, axis=0)
        own = np.nanvar(base, axis=0, ddof=1)
        recent_mean = np.nanmean(_matrix(recent), axis=0)
    d = len(baseline) - 1
    variance = (PRIOR_DEGREES * fleet**2 + d * np.nan_to_num(own, nan=0.0)) / (PRIOR_DEGREES + d)
    spread = np.fmax(np.sqrt(variance), floors(centre))
    t: np.ndarray = (recent_mean - centre) / (spread * np.sqrt(1 / len(recent) + 1 / len(baseline)))
    return t


def degrees_of_freedom() -> int:
    return PRIOR_DEGREES + BASELINE_NIGHTS - 1


def _p(t: np.ndarray) -> np.ndarray:
    return np.asarray(2 * student_t.sf(np.abs(t), degrees_of_freedom()), dtype=np.float64)


_GROUP = np.array([KINDS.index(kind_of(name)) for name in STATISTICS])


def _by_kind(tests: Sequence[np.ndarray]) -> dict[str, tuple[float, str]]:
    """Per kind of drift, the night's p-value and the statistic that gave it.

    Weighted Bonferroni: each kind gets a third of the error rate, shared among its
    statistics and recent-night windows, so the one edge statistic is not drowned by
    seventy sensor ones.
    """
    stacked = np.concatenate(tests)
    group = np.tile(_GROUP, len(tests))
    result = {}
    for k, kind in enumerate(KINDS):
        mine = np.flatnonzero((group == k) & ~np.isnan(stacked))
        if len(mine):
            p = _p(stacked[mine])
            best = int(np.argmin(p))
            result[kind] = (min(1.0, float(p[best]) * len(mine) * len(KINDS)), STATISTICS[mine[best] % len(STATISTICS)])
    return result


def benjamini_hochberg(p_values: Sequence[float], rate: float = FALSE_DISCOVERY_RATE) -> float:
    """The p-value cutoff at or below which hypotheses are rejected so that the expected
    share of false discoveries among them stays at `rate` (Benjamini & Hochberg 1995);
    0 when none is."""
    m = len(p_values)
    cutoff = 0.0
    for rank, p in enumerate(sorted(p_values), start=1):
        if p <= rate * rank / m:
            cutoff = p
    return cutoff


@dataclass(frozen=True)
class History:
    """What the detector knows of one device: its baseline nights and the nights judged
    since (oldest first, tonight last), all of at least MIN_EPOCHS epochs."""

    device: Hashable
    tenant: Hashable
    baseline: Sequence[Mapping[str, float]]
    judged: Sequence[Mapping[str, float]]


@dataclass(frozen=True)
class Verdict:
    p_value: float
    kind: str | None = None  # sensor | edge | sleep, None when nothing was found
    statistic: str | None = None  # the strongest evidence


def judge(histories: Sequence[History]) -> tuple[dict[Hashable, Verdict], dict[Hashable, Verdict]]:
    """Tonight's verdict for every device, and for every tenant's population.

    Devices: the smallest p-value of any kind, Benjamini-Hochberg across devices. The
    kind named is the first that passes the cutoff in the order sensor, edge, sleep: a
    sensor fault explains changed stages and agreement, a changed edge model explains
    changed agreement; a changed stage mix alone is the sleeper.

    Populations: a shift that each device shows too weakly to be sure of (less deep
    sleep in a whole cohort) adds up across devices. Per tenant, Stouffer's sum of its
    devices' stage evidence (devices with a sensor or edge verdict left out: their
    stages are explained), Bonferroni over stages and windows, Benjamini-Hochberg across
    tenants; at least MIN_POPULATION devices.
    """
    scales = fleet_scales([h.baseline for h in histories])
    tests = {
        h.device: [t_scores(h.judged[-k:], h.baseline, scales) for k in RECENT_NIGHTS if k <= len(h.judged)]
        for h in histories
    }
    evidence = {device: _by_kind(t) for device, t in tests.items()}
    cutoff = benjamini_hochberg([min(p for p, _ in e.values()) if e else 1.0 for e in evidence.values()])
    devices = {}
    for device, by_kind in evidence.items():
        found = next((kind for kind in KINDS if kind in by_kind and by_kind[kind][0] <= cutoff), None)
        best = min((p for p, _ in by_kind.values()), default=1.0)
        devices[device] = Verdict(best, found, by_kind[found][1] if found else None)

    explained = {h.device for h in histories if devices[h.device].kind in ("sensor", "edge")}
    return devices, _populations(histories, tests, explained)


def _populations(
    histories: Sequence[History], tests: Mapping[Hashable, list[np.ndarray]], explained: set[Hashable]
) -> dict[Hashable, Verdict]:
    stage_rows = np.flatnonzero(_STAGE)
    members: dict[Hashable, list[list[np.ndarray]]] = {}
    for h in histories:
        if h.device not in explained:
            members.setdefault(h.tenant, []).append([t[stage_rows] for t in tests[h.device]])
    combined = {}
    for tenant, devices in members.items():
        windows = min(len(d) for d in devices)
        if len(devices) < MIN_POPULATION or windows == 0:
            continue
        # Each device's t as the normal z with the same tail probability, then Stouffer.
        z = np.array([[norm.isf(student_t.sf(d[w], degrees_of_freedom())) for d in devices] for w in range(windows)])
        stouffer = np.nansum(z, axis=1) / np.sqrt(np.maximum((~np.isnan(z)).sum(axis=1), 1))  # (windows, stages)
        p = 2 * norm.sf(np.abs(stouffer))
        stage = int(np.argmin(p)) % len(stage_rows)
        combined[tenant] = (min(1.0, float(p.min()) * p.size), STATISTICS[stage_rows[stage]])
    cutoff = benjamini_hochberg([p for p, _ in combined.values()])
    return {
        tenant: Verdict(p, "sleep", statistic) if p <= cutoff else Verdict(p)
        for tenant, (p, statistic) in combined.items()
    }
