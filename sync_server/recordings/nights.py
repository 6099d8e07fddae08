"""Nights that open and close themselves: the server cuts a device's epochs into nights
and keeps a recording for each, so nobody has to create them by hand.

The rules, in order:

1. **The device's own nights.** Every epoch carries hours_since_start, counted by the
   device from the start of its night (edge_firmware device.h: a night starts after a
   break of an hour or more, or when someone returns after an hour away). Where that
   clock goes back, or epochs stop for an hour or more, a new night begins. The server
   does not decide this again; it reads the device's decision.
2. **In bed.** A device night is trimmed to its first and last epoch with someone
   present (presence_ratio at or above 0.2, as on the device); an epoch without a
   presence reading (no radar) counts as present.
3. **Long enough.** At least three hours between those two epochs, else it was a nap or
   a test, not a night.
4. **Closed or open.** A night is closed once the device has been heard an hour past
   its last in-bed epoch, or a later night began; the recording ends there. Until then
   it stays open (an open recording reaches 24 hours at most).

Recordings people made stay as they are: a night that overlaps any recording of the
device creates nothing, except that an open recording starting where the night starts
is ended when the night closes.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from noctis_contract.features import EPOCH_SECONDS, FEATURE_NAMES, dequantize
from sync_server.db import epochs, recordings
from sync_server.recordings.service import window_end
from sync_server.tenancy import TenantRepository

NIGHT_BREAK = timedelta(hours=1)  # edge_firmware/include/noctis/device.h kNightBreakSeconds
PRESENT_RATIO = 0.2  # device.h kPresentRatio
MIN_NIGHT = timedelta(hours=3)
_HOURS = FEATURE_NAMES.index("hours_since_start")
_PRESENCE = FEATURE_NAMES.index("presence_ratio")


@dataclass(frozen=True)
class Night:
    start: datetime  # the first in-bed epoch's start
    end: datetime  # the end of the last in-bed epoch
    closed: bool


def find_nights(starts: list[datetime], hours: np.ndarray, presence: np.ndarray, heard_until: datetime) -> list[Night]:
    """The nights in a device's epochs (in seq order): starts, hours_since_start and
    presence_ratio values (NaN = missing); heard_until: the newest epoch's end."""
    if not starts:
        return []
    boundaries = [0]
    for i in range(1, len(starts)):
        if hours[i] < hours[i - 1] or starts[i] - starts[i - 1] >= NIGHT_BREAK:
            boundaries.append(i)
    boundaries.append(len(starts))
    present = np.isnan(presence) | (presence >= PRESENT_RATIO)
    nights = []
    for number, (first, last) in enumerate(itertools.pairwise(boundaries)):
        in_bed = np.flatnonzero(present[first:last]) + first
        if not len(in_bed):
            continue
        start, end = starts[in_bed[0]], starts[in_bed[-1]] + timedelta(seconds=EPOCH_SECONDS)
        if end - start < MIN_NIGHT:
            continue
        later_night = number + 2 < len(boundaries)
        nights.append(Night(start, end, closed=later_night or heard_until - end >= NIGHT_BREAK))
    return nights


async def keep_nights(repo: TenantRepository, device_id: uuid.UUID, since: datetime) -> list[str]:
    """Find the device's nights in its epochs from `since` on and keep a recording for
    each; what was done, one line each."""
    columns = (epochs.c.start_time, epochs.c[FEATURE_NAMES[_HOURS]], epochs.c[FEATURE_NAMES[_PRESENCE]])
    query = (
        repo.select(epochs, *columns)
        .where(epochs.c.device_id == device_id, epochs.c.start_time >= since)
        .order_by(epochs.c.seq)
    )
    rows = (await repo.conn.execute(query)).all()
    if not rows:
        return []
    codes = np.full((len(rows), len(FEATURE_NAMES)), 255, dtype=np.uint8)
    codes[:, _HOURS] = [row[1] for row in rows]
    codes[:, _PRESENCE] = [row[2] for row in rows]
    values = dequantize(codes)
    starts = [row[0] for row in rows]
    heard_until = max(starts) + timedelta(seconds=EPOCH_SECONDS)
    done = []
    for night in find_nights(starts, values[:, _HOURS], values[:, _PRESENCE], heard_until):
        done += await _keep(repo, device_id, night)
    return done


async def _keep(repo: TenantRepository, device_id: uuid.UUID, night: Night) -> list[str]:
    overlapping = repo.select(recordings).where(
        recordings.c.device_id == device_id,
        recordings.c.started_at < night.end,
        recordings.c.window_end > night.start,
    )
    existing = list((await repo.conn.execute(overlapping)).mappings())
    if not existing:
        recording_id = uuid.uuid4()
        ended_at = night.end if night.closed else None
        await repo.insert(
            recordings,
            id=recording_id,
            device_id=device_id,
            started_at=night.start,
            ended_at=ended_at,
            window_end=window_end(night.start, ended_at),
            label=f"night of {night.start:%Y-%m-%d}",
        )
        return [
            f"{recording_id} {device_id} night from {night.start:%Y-%m-%d %H:%M} {'closed' if night.closed else 'open'}"
        ]
    for row in existing:
        if night.closed and row["ended_at"] is None and row["started_at"] == night.start:
            await repo.update(recordings, row["id"], ended_at=night.end, window_end=night.end)
            return [f"{row['id']} {device_id} night from {night.start:%Y-%m-%d %H:%M} closed"]
    return []
