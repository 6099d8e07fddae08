"""Nights that open and close themselves: the rules on made-up epochs, then the nightly
job cutting a device's uploads into recordings and closing the open one later."""

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np

from noctis_contract.features import FEATURE_NAMES
from sync_server.__main__ import rescore_recent
from sync_server.recordings.nights import find_nights
from tests.conftest import make_settings
from tests.factories import NIGHT_START, plausible_features

HOURS, PRESENCE = FEATURE_NAMES.index("hours_since_start"), FEATURE_NAMES.index("presence_ratio")
# The job looks back from now: far enough to see these nights whenever the suite runs.
SINCE_THE_NIGHTS = (datetime.now(UTC) - NIGHT_START).total_seconds() / 3600 + 48
PER_HOUR = 120


def _stretch(first_epoch: int, epochs: int, present: float, night_epoch0: int):
    """Epoch indexes, start times, the device's hours since its night began, presence."""
    index = np.arange(first_epoch, first_epoch + epochs)
    return index, (index - night_epoch0) / PER_HOUR, np.full(epochs, present)


def _device_days():
    """An 8-h night, 12 h out of bed (the device's night clock runs on), a 30-min nap
    after a return (a new device night, too short), out again, then a 7-h night."""
    parts = [
        _stretch(0, 8 * PER_HOUR, 1.0, 0),
        _stretch(8 * PER_HOUR, 12 * PER_HOUR, 0.0, 0),
        _stretch(20 * PER_HOUR, PER_HOUR // 2, 1.0, 20 * PER_HOUR),
        _stretch(20 * PER_HOUR + PER_HOUR // 2, 2 * PER_HOUR, 0.0, 20 * PER_HOUR),
        _stretch(23 * PER_HOUR, 7 * PER_HOUR, 1.0, 23 * PER_HOUR),
    ]
    index = np.concatenate([p[0] for p in parts])
    return index, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def test_the_rules_find_each_night_trimmed_to_the_bed_and_leave_the_last_open():
    index, hours, presence = _device_days()
    starts = [NIGHT_START + timedelta(seconds=30 * int(i)) for i in index]
    heard_until = starts[-1] + timedelta(seconds=30)
    nights = find_nights(starts, hours, presence, heard_until)
    assert [(n.start, n.end, n.closed) for n in nights] == [
        (NIGHT_START, NIGHT_START + timedelta(hours=8), True),
        (NIGHT_START + timedelta(hours=23), NIGHT_START + timedelta(hours=30), False),
    ]
    # An hour's silence splits a night as the device does; without presence readings
    # (no radar) every epoch counts as in bed.
    gap = [NIGHT_START + timedelta(seconds=30 * i) for i in [*range(4 * PER_HOUR), *range(5 * PER_HOUR, 9 * PER_HOUR)]]
    split = find_nights(gap, np.zeros(len(gap)), np.full(len(gap), np.nan), gap[-1] + timedelta(hours=2))
    assert [(n.start, n.end, n.closed) for n in split] == [
        (NIGHT_START, NIGHT_START + timedelta(hours=4), True),
        (NIGHT_START + timedelta(hours=5), NIGHT_START + timedelta(hours=9), True),
    ]


def _upload(client, device, index, hours, presence, rng):
    epochs = []
    for i, h, p in zip(index, hours, presence):
        features = plausible_features(rng, float(h))
        features[PRESENCE] = float(p)
        start = NIGHT_START + timedelta(seconds=30 * int(i))
        epochs.append({"seq": int(i), "start": start.isoformat().replace("+00:00", "Z"), "features": features})
    for first in range(0, len(epochs), 2880):
        batch = {"schema_version": 1, "epochs": epochs[first : first + 2880]}
        assert client.post("/v1/epochs:ingest", json=batch, headers=device.headers).status_code == 200


def test_the_nightly_job_keeps_a_recording_per_night_and_closes_the_open_one(
    client, tenant, make_device, database_url, tmp_path
):
    device = make_device(tenant)
    rng = np.random.default_rng(5)
    index, hours, presence = _device_days()
    _upload(client, device, index, hours, presence, rng)
    # A night someone recorded by hand stays theirs: nothing is made over it.
    mine = {"device_id": device.id, "started_at": "2026-11-27T21:30:00Z", "ended_at": "2026-11-28T06:30:00Z"}
    client.post("/v1/recordings", headers=tenant.headers, json=mine)
    settings = make_settings(database_url, tmp_path)
    job = asyncio.run(rescore_recent(settings, hours=SINCE_THE_NIGHTS))
    made = [line for line in job if device.id in line and " night from " in line]  # other tests share the job
    assert len(made) == 1

    kept = [r for r in client.get("/v1/recordings", headers=tenant.headers).json() if r["device_id"] == device.id]
    auto = [r for r in kept if r["label"].startswith("night of")]
    assert [(r["started_at"], r["ended_at"], r["epoch_count"]) for r in auto] == [
        ("2026-11-28T21:00:00Z", None, 7 * PER_HOUR)
    ]
    # Two more hours out of bed: the night closes where the bed was left, and is scored.
    more = np.arange(30 * PER_HOUR, 32 * PER_HOUR)
    _upload(client, device, more, (more - 23 * PER_HOUR) / PER_HOUR, np.zeros(len(more)), rng)
    job = asyncio.run(rescore_recent(settings, hours=SINCE_THE_NIGHTS))
    assert any(device.id in line and line.endswith("closed") for line in job)
    closed = client.get(f"/v1/recordings/{auto[0]['id']}", headers=tenant.headers).json()
    assert closed["ended_at"] == "2026-11-29T04:00:00Z" and closed["epoch_count"] == 7 * PER_HOUR
    assert any(line.startswith(auto[0]["id"]) and "epochs=840" in line for line in job)
