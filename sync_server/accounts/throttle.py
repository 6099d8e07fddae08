"""Brute-force limits on the two credential exchanges (login, device token).

Failures are counted per account (the email or the device id) and per source address
over a sliding window, in the database, so every worker and replica shares them (no
Redis to run; the table stays small because rows older than the window are deleted as
new ones arrive). Once an account or a source has reached its limit, every attempt is
refused with 429 and Retry-After until the window has moved on, the right secret
included: otherwise the limit would only slow a guesser down, never stop one.

Concurrent attempts can each pass the check before any of them is recorded, so a
burst can overshoot the limit by the number of attempts in flight; the argon2id hash
each attempt costs (on its own bounded pool, see security.py) keeps that burst small.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sync_server.db import auth_failures
from sync_server.errors import NotAuthenticated, TooManyRequests
from sync_server.settings import Settings


@asynccontextmanager
async def credential_attempt(engine: AsyncEngine, settings: Settings, account: str, source: str) -> AsyncIterator[None]:
    """Refuse the attempt if its account or source is over the limit; count it if the
    block inside raises NotAuthenticated (a wrong secret)."""
    window = timedelta(seconds=settings.auth_failure_window_seconds)
    limits = {
        f"account:{account}": settings.auth_failures_per_account,
        f"source:{source}": settings.auth_failures_per_source,
    }
    now = datetime.now(UTC)
    query = (
        select(auth_failures.c.key, func.count(), func.min(auth_failures.c.failed_at))
        .where(auth_failures.c.key.in_(list(limits)), auth_failures.c.failed_at > now - window)
        .group_by(auth_failures.c.key)
    )
    async with engine.connect() as conn:
        counts = (await conn.execute(query)).all()
    for key, count, oldest in counts:
        if count >= limits[key]:
            wait = math.ceil((oldest + window - now).total_seconds())
            raise TooManyRequests("too many failed attempts; try again later", retry_after_seconds=max(1, wait))
    try:
        yield
    except NotAuthenticated:
        # Its own transaction: the request's is rolled back with the 401.
        async with engine.begin() as conn:
            await conn.execute(auth_failures.insert(), [{"key": key, "failed_at": now} for key in limits])
            await conn.execute(delete(auth_failures).where(auth_failures.c.failed_at <= now - window))
        raise
