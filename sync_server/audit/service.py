from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from sync_server.db import audit_events
from sync_server.tenancy import TenantRepository


class AuditEvent(msgspec.Struct):
    id: int
    actor: str
    action: str
    target: str
    detail: str
    created_at: datetime


async def record(repo: TenantRepository, action: str, target: uuid.UUID | str, detail: str = "") -> None:
    """Append one event, in the same transaction as the action: both happen or neither."""
    await repo.insert(audit_events, actor=repo.actor, action=action, target=str(target), detail=detail[:500])


async def events(repo: TenantRepository, limit: int, offset: int) -> list[AuditEvent]:
    rows = await repo.list(audit_events, audit_events.c.id.desc(), limit=limit, offset=offset)
    return [AuditEvent(**{name: row[name] for name in AuditEvent.__struct_fields__}) for row in rows]
