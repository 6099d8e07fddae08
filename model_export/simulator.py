"""A physiologically grounded generator of labelled nights for all 15 features.

Real radar recordings with PSG labels are not available to us, so the radar part of
the edge and server models is trained on these nights, together with the real
heart-rate and movement data. Where the numbers come from:

- Sleep architecture (stage shares of an adult night: N1 ~5 %, N2 ~50 %, N3 ~15-20 %,
  REM ~20-25 %; cycles of ~90 min; N3 concentrated in the first cycles, REM episodes
  lengthening towards morning; sleep latency 10-20 min; brief awakenings several
  times per hour of sleep): Ohayon et al. 2004, Sleep 27(7):1255-73; Carskadon &
  Dement, Principles and Practice of Sleep Medicine, ch. 2.
- Heart rate by stage (NREM a few bpm below wake, lowest and most regular in N3,
  REM near wake with higher variability; higher vagal HRV in N3): Trinder et al.
  2001, J Sleep Res 10(4):253-64; Bonnet & Arand 1997, Electroencephalogr Clin
  Neurophysiol 102(5):390-6.
- Respiration (rate slightly lower and very regular in N3, irregular in REM and
  wake; tidal volume lower in REM): Douglas et al. 1982, Thorax 37(11):840-4.
- Body movement (frequent in wake, rare in N3, near absent in REM from atonia),
  which drives the accelerometer and radar motion features: actigraphy literature,
  e.g. Sadeh 2011, Sleep Med Rev 15(4):259-67.
- Sensor behaviour (radar loses vitals when the person leaves the bed or turns away;
  short dropouts) is modelled as bursts of missing values.
- Radar measurement error, against certified references on lying subjects: at best a
  mean absolute error of 3.2 bpm (heart rate) and 0.8 breaths/min, near 70 cm, growing
  closer than 60 cm and beyond 100 cm (a U-shaped profile), with beat-to-beat
  variability 15-30 % off (Mura et al. 2026, arXiv:2603.09791); heart rate within
  3.6 % and respiration within 9.1 % relative mean absolute error (Turppa et al. 2020,
  Sensors 20(22):6505, ten subjects in sleeping positions). Each epoch's radar vitals
  carry an independent error with those best-case mean absolute errors, scaled up
  outside 60-100 cm by RADAR_ERROR_GROWTH per metre (radar_error_scale); the growth
  rate is our assumption, the papers show the rise without figures we could read off.
  Variability (hr_std, ibi_rmssd, resp_rate_std) is off by a lognormal factor whose
  mean absolute error is ~20 %.

Magnitudes are set within the ranges these sources report; subject-to-subject
variation (baseline heart rate, breathing, distance to the radar, restlessness) is
drawn per night. The generator is deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from noctis_contract.features import EPOCH_SECONDS, FEATURE_NAMES, FEATURES, N_FEATURES, indices, night_hours
from noctis_contract.stages import Stage

EPOCHS_PER_MINUTE = 60 // EPOCH_SECONDS
_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}
# The radar's vitals vanish together when nobody is there; presence itself stays measured.
RADAR_FEATURES = [i for i in indices("radar") if i != _COL["presence_ratio"]]
ACCEL_FEATURES = indices("accelerometer")
W, L, D, R = Stage.WAKE, Stage.LIGHT, Stage.DEEP, Stage.REM

# Per-stage means, in schema order of the stage enum (wake, light, deep, rem).
HR_OFFSET = np.array([7.0, 0.0, -3.0, 3.0])  # bpm relative to the subject's sleeping baseline
HR_STD = np.array([4.0, 2.0, 1.2, 3.5])  # bpm within the epoch
RMSSD = np.array([32.0, 42.0, 55.0, 33.0])  # ms
RESP_OFFSET = np.array([1.5, 0.0, -0.6, 1.5])  # breaths/min
RESP_STD = np.array([2.5, 1.0, 0.5, 2.3])
RESP_AMPLITUDE = np.array([1.0, 1.0, 1.15, 0.8])  # relative to the subject's amplitude
RESP_REGULARITY = np.array([0.45, 0.75, 0.9, 0.5])
RADAR_MOTION = np.array([25.0, 5.0, 2.0, 3.0])  # % motion energy
ACTIVITY = np.array([60.0, 5.0, 1.0, 2.0])  # counts per epoch, when moving
MOVE_PROBABILITY = np.array([0.6, 0.15, 0.04, 0.06])  # chance that an epoch has any movement
ACCEL_STD = np.array([15.0, 3.0, 1.5, 2.0])  # mg
ACCEL_PEAK = np.array([120.0, 20.0, 8.0, 12.0])  # mg
MOVEMENT_EVENTS = np.array([3.0, 0.4, 0.1, 0.2])  # Poisson mean per epoch

# Radar error (module docstring): mean absolute errors at the best distance, the range
# where they hold, how fast they grow outside it, and the variability error.
HR_ERROR_BEST = 3.2  # bpm
RESP_ERROR_BEST = 0.8  # breaths/min
RADAR_BEST_RANGE = (0.6, 1.0)  # m
RADAR_ERROR_GROWTH = 1.0  # relative increase of the error per metre outside the best range (assumed)
VARIABILITY_ERROR_SIGMA = 0.25  # lognormal sigma: E|factor - 1| ~ 0.2
# A normal error with standard deviation s has mean absolute error s * sqrt(2 / pi).
_SD_PER_MAE = float(np.sqrt(np.pi / 2))


@dataclass(frozen=True)
class SimulatedNight:
    subject: str
    features: np.ndarray  # (n, 15), NaN = missing
    stages: np.ndarray  # (n,) int 0..3


def _minutes(rng: np.random.Generator, mean: float, sd: float, low: float = 1.0) -> int:
    return int(max(low, rng.normal(mean, sd)) * EPOCHS_PER_MINUTE)


def stage_sequence(rng: np.random.Generator, hours: float, deep_scale: float = 1.0) -> np.ndarray:
    """Wake at lights-off, ~90-min cycles (N3 early, REM late), awakenings, wake at the end.
    deep_scale < 1 gives a sleeper with less N3 (as with age), the cycle filled with N2."""
    total = int(hours * 60 * EPOCHS_PER_MINUTE)
    stages: list[int] = [W] * _minutes(rng, 15, 8, 2)
    cycle = 0
    while len(stages) < total:
        deep = max(0.0, rng.normal(38 - 13 * cycle, 6)) * deep_scale
        rem = min(45.0, max(3.0, rng.normal(8 + 8 * cycle, 4)))
        length = max(70.0, rng.normal(92, 10))
        light = max(10.0, length - deep - rem)
        stages += [L] * _minutes(rng, light * 0.6, 4)
        stages += [D] * int(deep * EPOCHS_PER_MINUTE)
        stages += [L] * _minutes(rng, light * 0.4, 3)
        stages += [R] * int(rem * EPOCHS_PER_MINUTE)
        cycle += 1
    sequence = np.array(stages[:total], dtype=np.int64)
    # Brief awakenings, more often later in the night; REM is often ended by one.
    i = len(sequence) // 10
    while i < len(sequence):
        rate = 0.004 + 0.006 * i / len(sequence)
        if rng.random() < rate:
            length = int(rng.integers(1, 8))
            sequence[i : i + length] = W
            i += length
        i += 1
    sequence[-_minutes(rng, 6, 4, 1) :] = W
    return sequence


def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    """Slowly wandering noise: physiology drifts, it does not jump each epoch."""
    noise = rng.normal(0, sd * np.sqrt(1 - rho**2), n)
    out = np.empty(n)
    out[0] = rng.normal(0, sd)
    for t in range(1, n):
        out[t] = rho * out[t - 1] + noise[t]
    return out


def radar_error_scale(distance: np.ndarray) -> np.ndarray:
    """How much larger than at its best the radar's vitals error is at each distance (m)."""
    low, high = RADAR_BEST_RANGE
    outside = np.maximum(0.0, np.maximum(low - distance, distance - high))
    return 1.0 + RADAR_ERROR_GROWTH * outside


def radar_vitals_error(rng: np.random.Generator, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch heart-rate (bpm) and respiration (breaths/min) errors of the radar at
    these distances: normal, with the studies' mean absolute errors (module docstring)."""
    scale = radar_error_scale(distance) * _SD_PER_MAE
    return rng.normal(0, HR_ERROR_BEST * scale), rng.normal(0, RESP_ERROR_BEST * scale)


def variability_error(rng: np.random.Generator, n: int) -> np.ndarray:
    """Multiplicative error of the radar's beat- and breath-variability measures."""
    return rng.lognormal(0, VARIABILITY_ERROR_SIGMA, n)


@dataclass(frozen=True)
class Sleeper:
    """One person in one bed: what differs between people, and what a night shares."""

    hr_base: float  # sleeping heart rate, bpm
    resp_base: float  # breaths/min
    amplitude: float  # chest displacement at the radar, mm
    distance: float  # radar to chest, m
    restless: float  # scales movement
    deep_scale: float = 1.0  # share of N3 relative to a typical adult

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Sleeper:
        return cls(
            rng.normal(58, 7), rng.normal(14, 1.5), rng.uniform(3, 10), rng.uniform(0.8, 1.6), rng.lognormal(0, 0.4)
        )

    def tonight(self, rng: np.random.Generator) -> Sleeper:
        """The same person on another night. Assumed night-to-night variation: resting
        heart rate ~2 bpm SD, breathing ~0.5/min, posture changes amplitude ~10 % and
        distance ~5 cm, restlessness ~20 %."""
        return replace(
            self,
            hr_base=self.hr_base + rng.normal(0, 2.0),
            resp_base=self.resp_base + rng.normal(0, 0.5),
            amplitude=self.amplitude * rng.lognormal(0, 0.1),
            distance=self.distance + rng.normal(0, 0.05),
            restless=self.restless * rng.lognormal(0, 0.2),
        )


def with_radar_error(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A night's heart-rate features as the radar would have measured them: heart rate
    off by the radar's error at a bedside distance drawn as a sleeper's, its variability
    measures off by variability_error. For real nights whose heart rate came from a watch
    (`python -m model_export evaluate --radar-error`); missing values stay missing."""
    n = len(features)
    distance = Sleeper.draw(rng).distance + _ar1(rng, n, 0.99, 0.05)
    hr_error, _ = radar_vitals_error(rng, distance)
    out = features.copy()
    out[:, _COL["hr_mean"]] += hr_error
    out[:, _COL["hr_std"]] *= variability_error(rng, n)
    out[:, _COL["ibi_rmssd"]] *= variability_error(rng, n)
    return out


def simulate_night(seed: int, hours: float | None = None, sleeper: Sleeper | None = None) -> SimulatedNight:
    """A night of a random person, or of `sleeper` (with its night-to-night variation)."""
    rng = np.random.default_rng(seed)
    hours = hours if hours is not None else float(rng.uniform(6.5, 8.5))
    stages = stage_sequence(rng, hours, sleeper.deep_scale if sleeper else 1.0)
    n = len(stages)
    person = sleeper.tonight(rng) if sleeper else Sleeper.draw(rng)
    hr_base, resp_base, amplitude = person.hr_base, person.resp_base, person.amplitude
    distance, restless = person.distance, person.restless

    f = np.full((n, N_FEATURES), np.nan)
    f[:, _COL["presence_ratio"]] = 1.0
    f[:, _COL["target_distance"]] = distance + _ar1(rng, n, 0.99, 0.05)
    hr_error, resp_error = radar_vitals_error(rng, f[:, _COL["target_distance"]])
    f[:, _COL["hr_mean"]] = hr_base + HR_OFFSET[stages] + _ar1(rng, n, 0.95, 3.5) + hr_error
    f[:, _COL["hr_std"]] = HR_STD[stages] * rng.lognormal(0, 0.6, n) * variability_error(rng, n)
    rmssd = RMSSD[stages] * rng.lognormal(0, 0.5, n) * rng.lognormal(0, 0.2)
    f[:, _COL["ibi_rmssd"]] = rmssd * variability_error(rng, n)
    f[:, _COL["resp_rate_mean"]] = resp_base + RESP_OFFSET[stages] + _ar1(rng, n, 0.9, 1.0) + resp_error
    f[:, _COL["resp_rate_std"]] = RESP_STD[stages] * rng.lognormal(0, 0.7, n) * variability_error(rng, n)
    f[:, _COL["resp_amplitude"]] = amplitude * RESP_AMPLITUDE[stages] * rng.lognormal(0, 0.3, n)
    f[:, _COL["resp_regularity"]] = np.clip(RESP_REGULARITY[stages] + rng.normal(0, 0.22, n), 0, 1)
    f[:, _COL["radar_motion"]] = np.clip(RADAR_MOTION[stages] * restless * rng.lognormal(0, 1.0, n), 0, 100)

    moving = rng.random(n) < np.clip(MOVE_PROBABILITY[stages] * restless, 0, 1)
    f[:, _COL["activity_count"]] = np.where(moving, ACTIVITY[stages] * rng.lognormal(0, 0.8, n), 0.0)
    f[:, _COL["accel_std"]] = ACCEL_STD[stages] * rng.lognormal(0, 0.4, n) * np.where(moving, 1.0, 0.3)
    f[:, _COL["accel_peak"]] = ACCEL_PEAK[stages] * rng.lognormal(0, 0.5, n) * np.where(moving, 1.0, 0.2)
    f[:, _COL["movement_events"]] = np.where(moving, rng.poisson(MOVEMENT_EVENTS[stages] * restless * 2), 0)
    f[:, _COL["hours_since_start"]] = night_hours(np.arange(n) * EPOCH_SECONDS, 0)

    # Out of bed during some long awakenings: presence drops and radar vitals vanish.
    for start in np.flatnonzero((stages == W) & (rng.random(n) < 0.01)):
        length = int(rng.integers(2, 20))
        f[start : start + length, _COL["presence_ratio"]] = 0.0
        f[start : start + length][:, RADAR_FEATURES] = np.nan
        stages[start : start + length] = W
    # Radar dropouts (turned away, interference) and rare accelerometer dropouts.
    for start in np.flatnonzero(rng.random(n) < 0.003):
        f[start : start + int(rng.integers(2, 20))][:, RADAR_FEATURES[:7]] = np.nan
    for start in np.flatnonzero(rng.random(n) < 0.0005):
        f[start : start + int(rng.integers(2, 10))][:, ACCEL_FEATURES] = np.nan

    lo = np.array([x.valid_min for x in FEATURES])
    hi = np.array([x.valid_max for x in FEATURES])
    f = np.where(np.isnan(f), np.nan, np.clip(f, lo, hi))
    return SimulatedNight(subject=f"sim-{seed}", features=f, stages=stages)


def simulate_nights(count: int, seed: int = 0) -> Iterator[SimulatedNight]:
    for i in range(count):
        yield simulate_night(seed * 100_003 + i)
