"""Fleet gauges from what devices report: bounded label sets, never one series per device.

Each upload's session record carries the device's health (noctis_contract.session); the
server keeps the latest in devices.health. The drift worker counts devices per edge
model and per condition that needs a person's attention.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sync_server.db import devices

# Conditions, each a predicate on a device's latest health and when it was last seen.
CONDITIONS = ("silent_day", "uploads_failing", "queue_over_half", "dropping_epochs", "weak_wifi", "low_heap")
FAILING_UPLOADS = 3
WEAK_WIFI_DBM = -80
LOW_HEAP_BYTES = 20_000


def conditions(health: dict[str, Any] | None, last_seen: datetime | None, now: datetime) -> set[str]:
    """The conditions one device is in (a device that never uploaded: silent)."""
    found = set()
    if last_seen is None or now - last_seen > timedelta(days=1):
        found.add("silent_day")
    health = health or {}
    if health.get("consecutive_failures", 0) >= FAILING_UPLOADS:
        found.add("uploads_failing")
    if health.get("queue_capacity") and health.get("queue_pending", 0) > health["queue_capacity"] / 2:
        found.add("queue_over_half")
    if health.get("dropped_epochs", 0) > 0:
        found.add("dropping_epochs")
    if WEAK_WIFI_DBM > health.get("rssi_dbm", 0) != 0:
        found.add("weak_wifi")
    if 0 < health.get("free_heap", 0) < LOW_HEAP_BYTES:
        found.add("low_heap")
    return found


async def devices_in_conditions(conn: AsyncConnection, now: datetime) -> dict[str, int]:
    counts = dict.fromkeys(CONDITIONS, 0)
    for row in await conn.execute(select(devices.c.health, devices.c.last_seen_at)):
        for condition in conditions(row.health, row.last_seen_at, now):
            counts[condition] += 1
    return counts


async def devices_by_model(conn: AsyncConnection) -> dict[int | None, int]:
    """How many devices run each edge model number, fleet-wide."""
    query = select(devices.c.edge_model_number, func.count()).group_by(devices.c.edge_model_number)
    return {number: count for number, count in (await conn.execute(query)).all()}
