from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from noctis_contract.features import FEATURE_NAMES
from noctis_contract.wire import IngestAck, Rejection
from sync_server.db import devices, epochs, insert_ignoring_conflicts
from sync_server.errors import NotAuthenticated, ResourceNotFound
from sync_server.ingest.parse import ParsedBatch, ValidEpoch
from sync_server.metrics import EPOCHS_INGESTED
from sync_server.security import Principal
from sync_server.tenancy import TenantRepository

ACK_SCAN = 10000


async def ingest(conn: AsyncConnection, device: Principal, batch: ParsedBatch) -> IngestAck:
    repo = TenantRepository(conn, device.tenant_id)
    try:
        # The row lock serialises ingest per device, so the duplicate check below and
        # the insert cannot interleave with a concurrent resend of the same seqs.
        device_row = await repo.get(devices, device.id, "device", for_update=True)
    except ResourceNotFound as exc:
        raise NotAuthenticated("this device is no longer registered") from exc

    rejected = list(batch.rejected)
    duplicates, fresh = await _split_stored(conn, device.id, batch.epochs, rejected)
    now = datetime.now(UTC)
    accepted = await insert_ignoring_conflicts(conn, epochs, [_row(device, e, now) for e in fresh])
    # Only a concurrent writer could make the insert skip a row, and the lock rules that out.
    duplicates += len(fresh) - accepted

    ack_seq = await _advance_ack(conn, device.id, device_row["ack_seq"])
    await repo.update(devices, device.id, ack_seq=ack_seq, last_seen_at=now)
    EPOCHS_INGESTED.labels("accepted").inc(accepted)
    EPOCHS_INGESTED.labels("duplicate").inc(duplicates)
    EPOCHS_INGESTED.labels("rejected").inc(len(rejected))
    rejected.sort(key=lambda r: r.seq)
    return IngestAck(accepted=accepted, duplicates=duplicates, rejected=rejected, ack_seq=ack_seq)


async def _split_stored(
    conn: AsyncConnection, device_id: uuid.UUID, batch: list[ValidEpoch], rejected: list[Rejection]
) -> tuple[int, list[ValidEpoch]]:
    """Count resends of stored epochs; reject a seq stored with a different start time."""
    if not batch:
        return 0, []
    seqs = [e.seq for e in batch]
    query = select(epochs.c.seq, epochs.c.start_time).where(
        epochs.c.device_id == device_id, epochs.c.seq >= min(seqs), epochs.c.seq <= max(seqs)
    )
    stored = {row.seq: row.start_time for row in await conn.execute(query)}
    duplicates, fresh = 0, []
    for epoch in batch:
        if epoch.seq not in stored:
            fresh.append(epoch)
        elif stored[epoch.seq] == epoch.start:
            duplicates += 1
        else:
            rejected.append(
                Rejection(
                    seq=epoch.seq,
                    reason=(f"seq {epoch.seq} is already stored with start {stored[epoch.seq].isoformat()}"),
                )
            )
    return duplicates, fresh


def _row(device: Principal, epoch: ValidEpoch, now: datetime) -> dict[str, Any]:
    return {
        "device_id": device.id,
        "seq": epoch.seq,
        "start_time": epoch.start,
        "tenant_id": device.tenant_id,
        **dict(zip(FEATURE_NAMES, epoch.features)),
        "edge_stage": epoch.edge_stage,
        "edge_model_version": epoch.edge_model_version,
        "received_at": now,
    }


async def _advance_ack(conn: AsyncConnection, device_id: uuid.UUID, ack_seq: int) -> int:
    """Move the watermark over every seq now stored without a gap after it."""
    while True:
        query = (
            select(epochs.c.seq)
            .where(epochs.c.device_id == device_id, epochs.c.seq > ack_seq)
            .order_by(epochs.c.seq)
            .limit(ACK_SCAN)
        )
        seqs = (await conn.execute(query)).scalars().all()
        for seq in seqs:
            if seq != ack_seq + 1:
                return ack_seq
            ack_seq = seq
        if len(seqs) < ACK_SCAN:
            return ack_seq
