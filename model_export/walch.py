"""Read nights in the Walch et al. (2019) file format and build schema-v1 features.

This data has heart rate (from the watch's PPG) and activity counts, no radar: the
radar features stay missing (NaN), never zero. See the data's README for provenance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noctis_contract.features import EPOCH_SECONDS, FEATURE_NAMES, FEATURES, N_FEATURES, night_hours
from noctis_contract.stages import stage_from_psg

_COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class Night:
    subject: str
    features: np.ndarray  # (n, 15) float, NaN = missing
    stages: np.ndarray  # (n,) int, -1 = unscored


def subject_ids(data_dir: Path) -> list[str]:
    return sorted(p.name.split("_")[0] for p in data_dir.glob("*_cleaned_psg.out"))


def _load_table(path: Path, delimiter: str | None) -> np.ndarray:
    table = np.loadtxt(path, delimiter=delimiter, ndmin=2)
    return table[np.argsort(table[:, 0], kind="stable")]


def load_night(data_dir: Path, subject: str) -> Night:
    psg = _load_table(data_dir / f"{subject}_cleaned_psg.out", None)
    hr = _load_table(data_dir / f"{subject}_cleaned_hr.out", None)
    counts = _load_table(data_dir / f"{subject}_cleaned_counts.out", ",")

    first_epoch = int(psg[0, 0] // EPOCH_SECONDS)
    epoch_index = (psg[:, 0] // EPOCH_SECONDS).astype(int) - first_epoch
    n = int(epoch_index.max()) + 1
    stages = np.full(n, -1, dtype=np.int64)
    for i, code in zip(epoch_index, psg[:, 1].astype(int)):
        stage = stage_from_psg(code)
        stages[i] = -1 if stage is None else int(stage)

    features = np.full((n, N_FEATURES), np.nan)
    features[:, _COL["hours_since_start"]] = night_hours(np.arange(n) * EPOCH_SECONDS, 0)

    hr_epoch = (hr[:, 0] // EPOCH_SECONDS).astype(int) - first_epoch
    for i in range(n):
        bpm = hr[hr_epoch == i, 1]
        if len(bpm) >= 1:
            features[i, _COL["hr_mean"]] = bpm.mean()
        if len(bpm) >= 2:
            features[i, _COL["hr_std"]] = bpm.std()
        if len(bpm) >= 3:
            # A proxy: successive differences of sample-wise beat intervals, not of
            # true beat-to-beat intervals, which this data does not have.
            ibi_ms = 60000.0 / bpm
            features[i, _COL["ibi_rmssd"]] = np.sqrt(np.mean(np.diff(ibi_ms) ** 2))

    count_epoch = (counts[:, 0] // EPOCH_SECONDS).astype(int) - first_epoch
    inside = (count_epoch >= 0) & (count_epoch < n)
    totals = np.bincount(count_epoch[inside], weights=counts[inside, 1], minlength=n)
    seen = np.bincount(count_epoch[inside], minlength=n) > 0
    features[:, _COL["activity_count"]] = np.where(seen, totals, np.nan)
    # Movement events: 15-s bins with any movement (0-2 per epoch). The watch's counts
    # have no unit of acceleration, so accel_std and accel_peak (mg) stay missing.
    moving = np.bincount(count_epoch[inside], weights=counts[inside, 1] > 0, minlength=n)
    features[:, _COL["movement_events"]] = np.where(seen, moving, np.nan)

    # Clip into the schema's valid ranges: a few watch readings sit outside them.
    lo = np.array([f.valid_min for f in FEATURES])
    hi = np.array([f.valid_max for f in FEATURES])
    features = np.where(np.isnan(features), np.nan, np.clip(features, lo, hi))
    return Night(subject=subject, features=features, stages=stages)


def load_all(data_dir: Path) -> list[Night]:
    return [load_night(data_dir, s) for s in subject_ids(data_dir)]
