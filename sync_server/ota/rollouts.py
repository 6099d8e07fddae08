"""Staged edge-model rollouts: operator actions (`python -m sync_server models rollout`).

A tenant's release goes to a percentage of its devices, the same devices first every
time (`service.bucket`), and is widened in place, paused (no device that does not run
it yet takes it), resumed, or rolled back: a newer row for the model before, at 100 %,
whose higher rollout number the devices install as a signed downgrade. Fleet-wide
promotions and rollbacks of the edge model (`models promote/rollback`) are rows too,
without a tenant. Every row is kept: the table is the rollout's audit trail.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from sync_server.audit import service as audit
from sync_server.db import devices, edge_rollouts
from sync_server.models.service import ModelStore, active_version
from sync_server.ota.service import bucket
from sync_server.tenancy import TenantRepository


class RolloutError(Exception):
    pass


async def latest(repo: TenantRepository) -> RowMapping | None:
    """The tenant's newest rollout row, if it ever had one."""
    query = repo.select(edge_rollouts).order_by(edge_rollouts.c.id.desc()).limit(1)
    row: RowMapping | None = (await repo.conn.execute(query)).mappings().first()
    return row


async def fleet_version(conn: AsyncConnection, store: ModelStore) -> str | None:
    """What a device of a tenant without rollouts is offered: the newest fleet-wide row,
    else the active edge model, else (before any device asked) the newest registered."""
    query = select(edge_rollouts.c.version).where(edge_rollouts.c.tenant_id.is_(None))
    newest = (await conn.execute(query.order_by(edge_rollouts.c.id.desc()).limit(1))).scalar()
    return newest or await active_version(conn, "edge") or store.newest_version("edge")


async def record_fleet(conn: AsyncConnection, version: str, previous: str | None, actor: str, reason: str) -> None:
    """A fleet-wide promote or rollback of the edge model: every device, a new number."""
    values = {"version": version, "previous_version": previous, "percent": 100, "actor": actor, "reason": reason}
    await conn.execute(edge_rollouts.insert().values(tenant_id=None, **values))


async def release(
    repo: TenantRepository, store: ModelStore, version: str, percent: int, actor: str, reason: str
) -> RowMapping:
    """Start a release of `version` to `percent` of the tenant's devices, or widen the
    one in progress."""
    if version not in store.registered_versions("edge"):
        raise RolloutError(f"{version} is not a registered edge model")
    if not 0 < percent <= 100:
        raise RolloutError("the percentage is between 1 and 100")
    current = await latest(repo)
    if current is not None and current["version"] == version:
        if percent < current["percent"]:
            raise RolloutError(
                f"{version} already reaches {current['percent']} %: a rollout only widens (roll it back instead)"
            )
        await repo.update(edge_rollouts, current["id"], percent=percent, updated_at=datetime.now(UTC))
    else:
        if current is not None and current["percent"] < 100:
            raise RolloutError(
                f"{current['version']} is rolling out at {current['percent']} %: widen it to 100 or roll it back first"
            )
        previous = current["version"] if current is not None else await fleet_version(repo.conn, store)
        if previous == version:
            raise RolloutError(f"the tenant's devices are already offered {version}")
        values = {"version": version, "previous_version": previous, "percent": percent, "actor": actor}
        await repo.insert(edge_rollouts, reason=reason or f"release of {version}", **values)
    row = await latest(repo)
    assert row is not None
    await audit.record(repo, "rollout.release", row["id"], f"{version} to {percent} % of the devices")
    return row


async def set_state(repo: TenantRepository, state: str) -> RowMapping:
    """Pause (no device that does not run it yet takes it) or resume the tenant's rollout."""
    current = await latest(repo)
    if current is None:
        raise RolloutError("the tenant has no rollout")
    if current["state"] == state:
        raise RolloutError(f"the rollout of {current['version']} is already {state}")
    await repo.update(edge_rollouts, current["id"], state=state, updated_at=datetime.now(UTC))
    row = await latest(repo)
    assert row is not None
    await audit.record(repo, "rollout.pause" if state == "paused" else "rollout.resume", row["id"], row["version"])
    return row


async def roll_back(repo: TenantRepository, actor: str, reason: str) -> RowMapping:
    """Offer every device of the tenant the model before the current rollout's, under a
    newer number: devices that installed the release downgrade to it."""
    current = await latest(repo)
    if current is None or current["previous_version"] is None:
        raise RolloutError("the tenant has no rollout to roll back")
    values = {"version": current["previous_version"], "previous_version": current["version"], "percent": 100}
    await repo.insert(edge_rollouts, actor=actor, reason=reason or f"rollback of {current['version']}", **values)
    row = await latest(repo)
    assert row is not None
    await audit.record(repo, "rollout.rollback", row["id"], f"back to {row['version']} from {current['version']}")
    return row


async def status(repo: TenantRepository, store: ModelStore) -> list[str]:
    """The tenant's current rollout, and per device what it was offered and what it runs."""
    current = await latest(repo)
    lines = []
    if current is None:
        lines.append(f"no rollout: every device is offered {await fleet_version(repo.conn, store)}")
    else:
        lines.append(
            f"rollout #{current['id']}: {current['version']} to {current['percent']} % ({current['state']}), "
            f"previous {current['previous_version']}, by {current['actor']}: {current['reason']}"
        )
    names = {manifest.get("version_number"): v for v, manifest in store.registered("edge").items()}
    query = repo.select(devices).order_by(devices.c.name)
    rows = list((await repo.conn.execute(query)).mappings())
    for row in rows:
        runs = names.get(row["edge_model_number"], row["edge_model_number"])
        since = f" since {row['edge_model_since']:%Y-%m-%d %H:%M}" if row["edge_model_since"] else ""
        number = "-" if row["ota_offered_rollout"] is None else row["ota_offered_rollout"]
        lines.append(
            f"  {row['name']:<24} bucket {bucket(row['id']):>2}  offered {row['ota_offered_version'] or '-'}"
            f" (#{number})  runs {runs or '-'}{since}"
        )
    offered = Counter(str(row["ota_offered_version"]) for row in rows)
    running = Counter(str(names.get(row["edge_model_number"], row["edge_model_number"])) for row in rows)
    lines.append(f"devices {len(rows)}; offered {dict(offered)}; running {dict(running)}")
    return lines


def tenant_repository(conn: AsyncConnection, tenant: str, actor: str) -> TenantRepository:
    try:
        return TenantRepository(conn, uuid.UUID(tenant), actor=actor)
    except ValueError as exc:
        raise RolloutError(f"{tenant!r} is not a tenant id") from exc
