"""Tenant scoping in one place: every tenant-owned read and write goes through here.

Services never filter by tenant inline; they ask a ``TenantRepository`` for rows, and
the repository adds the tenant condition. A row of another tenant is indistinguishable
from a row that does not exist (404).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, Table, delete, or_, select, union_all, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from sync_server.db import metadata
from sync_server.errors import ResourceNotFound

# The tables whose changes PostgreSQL announces (sync_server.changes).
ANNOUNCED_TABLES = frozenset({"users", "devices", "recordings"})


class TenantRepository:
    def __init__(
        self,
        conn: AsyncConnection,
        tenant_id: uuid.UUID,
        actor: str = "system",
        changing: Callable[[str], None] | None = None,
    ) -> None:
        self.conn = conn
        self.tenant_id = tenant_id
        self.actor = actor  # who acts through it, for the audit log: user:<id>, cli:<login>
        # Told the id of each announced row this repository updates or deletes, as it
        # does (Changes.announced): what this worker kept of the row ends at once, not
        # when PostgreSQL's announcement of the commit comes back, so the request after
        # a user is disabled is refused on this worker whatever the timing. Early is
        # safe: a read between now and the commit is ended by that announcement.
        self.changing = changing

    def select(self, table: Table, *columns: Any) -> Select[Any]:
        return select(*(columns or (table,))).where(table.c.tenant_id == self.tenant_id)

    def select_with_shared(self, table: Table, *columns: Any) -> Select[Any]:
        """The tenant's rows and the rows shared by every tenant (tenant_id NULL)."""
        return select(*(columns or (table,))).where(
            or_(table.c.tenant_id == self.tenant_id, table.c.tenant_id.is_(None))
        )

    async def get(self, table: Table, row_id: uuid.UUID, what: str, *, for_update: bool = False) -> RowMapping:
        query = self.select(table).where(table.c.id == row_id)
        if for_update:
            query = query.with_for_update()
        row: RowMapping | None = (await self.conn.execute(query)).mappings().first()
        if row is None:
            raise ResourceNotFound(f"{what} {row_id} not found")
        return row

    async def list(self, table: Table, *order_by: Any, limit: int = 100, offset: int = 0) -> list[RowMapping]:
        query = self.select(table).order_by(*order_by).limit(limit).offset(offset)
        return list((await self.conn.execute(query)).mappings())

    async def insert(self, table: Table, **values: Any) -> None:
        await self.conn.execute(table.insert().values(tenant_id=self.tenant_id, **values))

    async def update(self, table: Table, row_id: uuid.UUID, **values: Any) -> None:
        self._changing(table, row_id)
        await self.conn.execute(
            update(table).where(table.c.tenant_id == self.tenant_id, table.c.id == row_id).values(**values)
        )

    async def delete(self, table: Table, row_id: uuid.UUID) -> None:
        self._changing(table, row_id)
        await self.conn.execute(delete(table).where(table.c.tenant_id == self.tenant_id, table.c.id == row_id))

    def _changing(self, table: Table, row_id: uuid.UUID) -> None:
        if self.changing is not None and table.name in ANNOUNCED_TABLES:
            self.changing(str(row_id))

    async def changing_all(self) -> None:
        """Tell changing of every announced row of the tenant: deleting the tenant
        removes them all by cascade, without an update or delete of their own."""
        if self.changing is None:
            return
        tables = [metadata.tables[name] for name in sorted(ANNOUNCED_TABLES)]
        for row_id in (await self.conn.execute(union_all(*(self.select(t, t.c.id) for t in tables)))).scalars():
            self.changing(str(row_id))

    async def delete_where(self, table: Table, *conditions: Any) -> None:
        await self.conn.execute(delete(table).where(table.c.tenant_id == self.tenant_id, *conditions))
