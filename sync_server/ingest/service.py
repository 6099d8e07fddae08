from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from noctis_contract.blocks import OFFLINE_HORIZON_DAYS
from noctis_contract.features import FEATURE_NAMES
from noctis_contract.session import GapReason, SessionRecord
from noctis_contract.wire import IngestAck, Rejection
from sync_server import storage
from sync_server.db import device_incarnations, devices, epochs, insert_ignoring_conflicts, sync_gaps
from sync_server.errors import NotAuthenticated, ResourceNotFound
from sync_server.ingest.parse import Epochs, ParsedBatch
from sync_server.metrics import EPOCHS_INGESTED
from sync_server.security import Principal
from sync_server.tenancy import TenantRepository

ACK_SCAN = 10000


async def ingest(
    conn: AsyncConnection,
    device: Principal,
    batch: ParsedBatch,
    limits: tuple[int, int] = (0, 0),
    changing: Callable[[str], None] | None = None,
) -> IngestAck:
    """changing: told the device's id as its row is updated (TenantRepository.changing),
    so what this worker kept of the device's nights ends before the answer is sent."""
    repo = TenantRepository(conn, device.tenant_id, changing=changing)
    try:
        # The row lock serialises ingest per device, so the duplicate check below and
        # the insert cannot interleave with a concurrent resend of the same seqs.
        device_row = await repo.get(devices, device.id, "device", for_update=True)
    except ResourceNotFound as exc:
        raise NotAuthenticated("this device is no longer registered") from exc

    ack_seq: int = device_row["ack_seq"]
    stored_seq: int = device_row["stored_seq"]
    session = batch.session
    incarnation = session.incarnation if session else 0
    offset, end, declared = await _seq_space(conn, device, incarnation, ack_seq, stored_seq)

    rejected = list(batch.rejected)
    epochs_in = await _within_retention(conn, batch.epochs, rejected)
    in_space = [i for i, seq in enumerate(epochs_in.seqs) if offset + seq < end]
    reason = f"incarnation {incarnation} has ended: a newer one uses these seqs"
    rejected += [Rejection(seq=seq, reason=reason) for seq in epochs_in.seqs if offset + seq >= end]
    duplicates, fresh = await _split_stored(conn, device.id, offset, epochs_in.take(in_space), stored_seq, rejected)
    now = datetime.now(UTC)
    accepted = await _insert(conn, device, offset, fresh, now)
    # Only a concurrent writer could make the insert skip a row, and the lock rules that out.
    duplicates += len(fresh) - accepted
    landed = [offset + seq for seq in fresh.seqs]
    # While nothing was stored beyond the watermark, the epochs beyond it now are this
    # batch's: the watermark moves over them without a scan of the table.
    beyond_ack = sorted(landed) if stored_seq <= ack_seq else None
    stored_seq = max([stored_seq, *landed])

    gone = _declared_by_device(session, offset, ack_seq) if session else []
    gone += [(offset + r.seq, offset + r.seq, GapReason.REJECTED, r.reason) for r in rejected if r.final]
    for first, last, why, detail in gone:
        declared += await _record_gap(conn, device, first, min(last, end - 1), why, detail, ack_seq)

    ack_seq = await _advance_ack(conn, device.id, ack_seq, beyond_ack)
    values: dict[str, Any] = {"ack_seq": ack_seq, "stored_seq": stored_seq, "last_seen_at": now}
    if session:
        values["health"] = {"incarnation": incarnation, **asdict(session.health)}
    values.update(_running_model(epochs_in, now))
    await repo.update(devices, device.id, **values)
    EPOCHS_INGESTED.labels("accepted").inc(accepted)
    EPOCHS_INGESTED.labels("duplicate").inc(duplicates)
    EPOCHS_INGESTED.labels("rejected").inc(len(rejected))
    EPOCHS_INGESTED.labels("declared_gone").inc(declared)
    rejected.sort(key=lambda r: r.seq)
    return IngestAck(
        accepted=accepted,
        duplicates=duplicates,
        rejected=rejected,
        ack_seq=max(-1, min(ack_seq, end - 1) - offset),
        incarnation=incarnation,
        declared_gap_epochs=declared,
        max_batch_epochs=limits[0],
        max_body_bytes=limits[1],
    )


async def _seq_space(
    conn: AsyncConnection, device: Principal, incarnation: int, ack_seq: int, stored_seq: int
) -> tuple[int, int, int]:
    """Where this incarnation's seqs sit on the device's seq line (offset), where the
    next incarnation's begin (end), and how many seqs a new incarnation closed off (the
    previous one's seqs that never arrived). One query: a device has few incarnations."""
    query = select(device_incarnations.c.incarnation, device_incarnations.c.seq_offset).where(
        device_incarnations.c.device_id == device.id
    )
    spaces = {row.incarnation: row.seq_offset for row in await conn.execute(query)}
    declared = 0
    if incarnation == 0:
        offset = 0
    elif incarnation in spaces:
        offset = spaces[incarnation]
    else:
        gone = select(func.max(sync_gaps.c.last_seq)).where(sync_gaps.c.device_id == device.id)
        offset = max(ack_seq, stored_seq, (await conn.execute(gone)).scalar() or -1) + 1
        # The device started over: whatever the old space still lacked is gone with its flash.
        why = f"incarnation {incarnation} began"
        declared = await _record_gap(conn, device, ack_seq + 1, offset - 1, GapReason.INCARNATION_ENDED, why, ack_seq)
        await conn.execute(
            device_incarnations.insert().values(
                device_id=device.id, incarnation=incarnation, tenant_id=device.tenant_id, seq_offset=offset
            )
        )
    end = min((start for start in spaces.values() if start > offset), default=2**63 - 1)
    return offset, end, declared


def _running_model(batch: Epochs, now: datetime) -> dict[str, Any]:
    """The edge model number the batch's newest epoch was staged with, and since when the
    device runs it (now, if it differs from the one recorded): what OTA rollouts report."""
    if not len(batch):
        return {}
    number = batch.edge_model_versions[max(range(len(batch)), key=batch.seqs.__getitem__)]
    if number is None:
        return {}
    changed = devices.c.edge_model_number.is_distinct_from(number)
    return {"edge_model_number": number, "edge_model_since": case((changed, now), else_=devices.c.edge_model_since)}


async def _within_retention(conn: AsyncConnection, batch: Epochs, rejected: list[Rejection]) -> Epochs:
    """The epochs younger than the retention in force; the others are rejected for good:
    stored, they would be dropped by the retention job after being acknowledged. A
    retention shorter than a device's offline horizon is refused, so only epochs older
    than that horizon cost a look at the policy."""
    now = datetime.now(UTC)
    if not batch or min(batch.starts) >= now - timedelta(days=OFFLINE_HORIZON_DAYS):
        return batch
    kept_for = await storage.retention(conn)
    if kept_for is None:
        return batch
    days = kept_for.total_seconds() / 86400
    young = []
    for i, (seq, start) in enumerate(zip(batch.seqs, batch.starts)):
        if start >= now - kept_for:
            young.append(i)
        else:
            reason = f"start {start.isoformat()} is older than the {days:g}-day retention"
            rejected.append(Rejection(seq=seq, reason=reason, final=True))
    return batch.take(young)


def _declared_by_device(session: SessionRecord, offset: int, ack_seq: int) -> list[tuple[int, int, GapReason, str]]:
    """The seqs the device says it no longer holds, on the server's seq line."""
    below = (ack_seq + 1, offset + session.held_from - 1, session.reason_below, "below the oldest seq held")
    holes = [
        (offset + g.first_seq, offset + g.first_seq + g.count - 1, g.reason, "declared by the device")
        for g in session.gaps
    ]
    return [below, *holes]


async def _record_gap(
    conn: AsyncConnection,
    device: Principal,
    first: int,
    last: int,
    reason: GapReason,
    detail: str,
    ack_seq: int,
) -> int:
    """Record first..last as gone, except what is stored, already declared or acknowledged.
    Returns the number of seqs newly declared."""
    first = max(first, ack_seq + 1)
    if last < first:
        return 0
    stored = select(epochs.c.seq).where(epochs.c.device_id == device.id, epochs.c.seq.between(first, last))
    known = select(sync_gaps.c.first_seq, sync_gaps.c.last_seq).where(
        sync_gaps.c.device_id == device.id, sync_gaps.c.first_seq <= last, sync_gaps.c.last_seq >= first
    )
    covered = [(s, s) for s in (await conn.execute(stored)).scalars()]
    covered += [(row.first_seq, row.last_seq) for row in await conn.execute(known)]
    runs = uncovered(first, last, covered)
    rows = [
        {
            "device_id": device.id,
            "tenant_id": device.tenant_id,
            "first_seq": lo,
            "last_seq": hi,
            "reason": reason.label,
            "detail": detail[:500],
        }
        for lo, hi in runs
    ]
    if rows:
        await conn.execute(sync_gaps.insert(), rows)
    return sum(hi - lo + 1 for lo, hi in runs)


def uncovered(first: int, last: int, covered: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The runs of first..last that no (lo, hi) range in covered touches."""
    runs, at = [], first
    for lo, hi in sorted(covered):
        if hi < at:
            continue
        if lo > last:
            break
        if lo > at:
            runs.append((at, lo - 1))
        at = hi + 1
    if at <= last:
        runs.append((at, last))
    return runs


async def _split_stored(
    conn: AsyncConnection, device_id: uuid.UUID, offset: int, batch: Epochs, stored_seq: int, rejected: list[Rejection]
) -> tuple[int, Epochs]:
    """Count resends of stored epochs; reject a seq stored with a different start time.
    Returns the count and the epochs not stored yet."""
    if not batch or offset + min(batch.seqs) > stored_seq:
        return 0, batch  # all above the highest stored seq: the live upload's path, no lookup
    # A resend. Its seqs are looked up without a time bound: a seq stored under another
    # start time must be found in whichever chunk it lies.
    seqs = [offset + seq for seq in batch.seqs]
    query = select(epochs.c.seq, epochs.c.start_time).where(
        epochs.c.device_id == device_id, epochs.c.seq >= min(seqs), epochs.c.seq <= max(seqs)
    )
    stored = {row.seq: row.start_time for row in await conn.execute(query)}
    duplicates, fresh = 0, []
    for i, (seq, start) in enumerate(zip(batch.seqs, batch.starts)):
        stored_start = stored.get(offset + seq)
        if stored_start is None:
            fresh.append(i)
        elif stored_start == start:
            duplicates += 1
        else:
            reason = f"seq {seq} is already stored with start {stored_start.isoformat()}"
            rejected.append(Rejection(seq=seq, reason=reason))
    return duplicates, batch.take(fresh)


async def _insert(conn: AsyncConnection, device: Principal, offset: int, batch: Epochs, now: datetime) -> int:
    """Store the epochs, skipping any whose key is already stored; return how many were new."""
    columns: dict[str, list[Any]] = {
        "seq": [offset + seq for seq in batch.seqs],
        "start_time": batch.starts,
        **{name: batch.codes[:, i].tolist() for i, name in enumerate(FEATURE_NAMES)},
        "edge_stage": batch.edge_stages,
        "edge_model_version": batch.edge_model_versions,
    }
    same = {"device_id": device.id, "tenant_id": device.tenant_id, "received_at": now}
    return await insert_ignoring_conflicts(conn, epochs, same, columns)


async def _advance_ack(conn: AsyncConnection, device_id: uuid.UUID, ack_seq: int, beyond: list[int] | None) -> int:
    """Move the watermark over every seq now stored or declared gone, up to the first hole.
    beyond: the stored seqs above the watermark in order, when the caller knows them all;
    None to scan the table for them."""
    query = (
        select(sync_gaps.c.first_seq, sync_gaps.c.last_seq)
        .where(sync_gaps.c.device_id == device_id, sync_gaps.c.last_seq > ack_seq)
        .order_by(sync_gaps.c.first_seq)
    )
    gaps = list(await conn.execute(query))
    next_gap = 0
    while True:
        moved = False
        while next_gap < len(gaps) and gaps[next_gap].first_seq <= ack_seq + 1:
            ack_seq = max(ack_seq, gaps[next_gap].last_seq)
            next_gap += 1
            moved = True
        if beyond is None:
            query = (
                select(epochs.c.seq)
                .where(epochs.c.device_id == device_id, epochs.c.seq > ack_seq)
                .order_by(epochs.c.seq)
                .limit(ACK_SCAN)
            )
            stored = list((await conn.execute(query)).scalars())
        else:
            stored = [seq for seq in beyond if seq > ack_seq]
        for seq in stored:
            if seq != ack_seq + 1:
                break
            ack_seq = seq
            moved = True
        if not moved:
            return ack_seq
