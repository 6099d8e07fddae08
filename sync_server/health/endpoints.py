from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from sqlalchemy import text

from sync_server.deps import Engine, Models
from sync_server.errors import ServiceUnavailable, problem_responses


@get("/healthz", exclude_from_auth=True, tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is up; says nothing about its dependencies."""
    return {"status": "ok"}


@get("/readyz", exclude_from_auth=True, tags=["health"], responses=problem_responses(503))
async def readyz(engine: Engine, models: Models, state: State) -> dict[str, str]:
    """Ready to serve: the database answers, its circuit breaker is closed and the active
    server model is loaded."""
    if state.breaker.state != "closed":
        raise ServiceUnavailable(f"database circuit breaker {state.breaker.state.replace('_', '-')}")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means not ready
        raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from exc
    if models.failed is not None:
        version, reason = models.failed
        serving = models.server.version if models.server else "no model"
        raise ServiceUnavailable(f"the active server model {version} cannot be loaded ({reason}); serving {serving}")
    if models.server is None:
        raise ServiceUnavailable("no server model loaded")
    return {"status": "ready", "server_model": models.server.version}
