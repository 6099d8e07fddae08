"""Drills for operators (registered only with NOCTIS_INTERNAL_ROUTES=true; owners and
admins only): inject faults into this worker, measure its inference path, and show or
change TimescaleDB's compression and retention."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import msgspec
import numpy as np
from litestar import Controller, delete, get, post, put
from litestar.params import JSONBody

from sync_server import storage
from sync_server.deps import Engine, Models
from sync_server.errors import ServiceUnavailable, problem_responses
from sync_server.faults import INJECTOR, Kind, Target
from sync_server.predict.service import score
from sync_server.storage import TablePolicies


class FaultIn(msgspec.Struct, forbid_unknown_fields=True):
    target: Target
    kind: Kind
    seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)]  # how long it lasts
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 0  # for kind "latency"


class FaultOut(msgspec.Struct):
    target: str
    kind: str
    latency_ms: int
    seconds_left: float


class StressIn(msgspec.Struct, forbid_unknown_fields=True):
    requests: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    epochs: Annotated[int, msgspec.Meta(ge=1, le=2880)] = 960  # one night each
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=32)] = 4


class PoliciesIn(msgspec.Struct, forbid_unknown_fields=True):
    """What to change on both hypertables; a field left out stays as it is."""

    compress_after_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=0, le=36500)] | None = None  # 0: keep for good


class StressOut(msgspec.Struct):
    model_version: str
    requests: int
    epochs: int
    concurrency: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    epochs_per_second: float


def _faults() -> list[FaultOut]:
    now = time.monotonic()
    return [FaultOut(f.target, f.kind, f.latency_ms, round(f.until - now, 1)) for f in INJECTOR.active()]


class InternalController(Controller):
    path = "/internal"
    tags = ["internal"]
    opt = {"needs": "admin"}

    @get("/faults", responses=problem_responses(401, 403))
    async def list_faults(self) -> list[FaultOut]:
        """The faults active in the worker that answers."""
        return _faults()

    @post("/faults", status_code=201, responses=problem_responses(400, 401, 403))
    async def inject_fault(self, data: JSONBody[FaultIn]) -> list[FaultOut]:
        """Make this worker's database transactions or inferences slow or failing for a while."""
        INJECTOR.add(data.target, data.kind, data.seconds, data.latency_ms)
        return _faults()

    @delete("/faults", responses=problem_responses(401, 403))
    async def clear_faults(self) -> None:
        INJECTOR.clear()

    @get("/db/policies", responses=problem_responses(401, 403, 409))
    async def db_policies(self, engine: Engine) -> list[TablePolicies]:
        """TimescaleDB's chunk interval, compression and retention of epochs and predictions."""
        async with engine.connect() as conn:  # the tables' owner: the policies are not a tenant's
            return await storage.policies(conn)

    @put("/db/policies", responses=problem_responses(400, 401, 403, 409, 422))
    async def change_db_policies(self, data: JSONBody[PoliciesIn], engine: Engine) -> list[TablePolicies]:
        """Change compression and retention; a retention shorter than a device's offline
        horizon is refused, and ingest follows the new retention at once."""
        async with engine.begin() as conn:
            await storage.set_policies(conn, data.compress_after_days, data.retention_days)
            return await storage.policies(conn)

    @post("/stress", status_code=200, responses=problem_responses(400, 401, 403, 503))
    async def stress(self, data: JSONBody[StressIn], models: Models) -> StressOut:
        """Score synthetic nights through the same path as /v1/predict and report latency."""
        model = models.server
        if model is None:
            raise ServiceUnavailable("no server model is loaded")
        rng = np.random.default_rng(0)
        night = model.fill_values * (1 + 0.05 * rng.standard_normal((data.epochs, len(model.fill_values))))
        slots = asyncio.Semaphore(data.concurrency)
        latencies: list[float] = []

        async def one() -> None:
            async with slots:
                started = time.perf_counter()
                await score(model, night)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(data.requests)))
        elapsed = time.perf_counter() - started
        p50, p95, p99 = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
        return StressOut(
            model_version=model.version,
            requests=data.requests,
            epochs=data.epochs,
            concurrency=data.concurrency,
            p50_ms=round(float(p50), 2),
            p95_ms=round(float(p95), 2),
            p99_ms=round(float(p99), 2),
            epochs_per_second=round(data.requests * data.epochs / elapsed, 1),
        )
