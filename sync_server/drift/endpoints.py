from __future__ import annotations

from litestar import Controller, get

from sync_server.db import drift_reports
from sync_server.deps import Repo
from sync_server.drift.schemas import DriftReportOut
from sync_server.errors import problem_responses


class DriftController(Controller):
    path = "/v1/model/drift"
    tags = ["drift"]
    opt = {"needs": "user"}

    @get("/", responses=problem_responses(401, 403))
    async def latest(self, repo: Repo) -> list[DriftReportOut]:
        """The latest drift report of each of the tenant's devices, worst first."""
        query = repo.select(drift_reports).order_by(drift_reports.c.id.desc()).limit(5000)
        latest: dict[object, DriftReportOut] = {}
        for row in (await repo.conn.execute(query)).mappings():
            if row["device_id"] not in latest:
                latest[row["device_id"]] = DriftReportOut(**{k: row[k] for k in DriftReportOut.__struct_fields__})
        order = {"major": 0, "unknown": 1, "stable": 2}
        return sorted(latest.values(), key=lambda r: (order.get(r.level, 4), r.edge_agreement or 0.0))
