"""Named dependencies the handlers declare; app.py provides them."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sync_server.models.service import ModelStore
from sync_server.settings import Settings
from sync_server.tenancy import TenantRepository

Conn: TypeAlias = NamedDependency[AsyncConnection]  # the request's one transaction
Engine: TypeAlias = NamedDependency[AsyncEngine]
Repo: TypeAlias = NamedDependency[TenantRepository]  # scoped to the caller's tenant
Models: TypeAlias = NamedDependency[ModelStore]
Config: TypeAlias = NamedDependency[Settings]
