from __future__ import annotations

from litestar import Controller, get

from sync_server.audit.service import AuditEvent, events
from sync_server.bounds import Limit, Offset
from sync_server.deps import Repo
from sync_server.errors import problem_responses


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]
    opt = {"needs": "admin"}

    @get("/", responses=problem_responses(400, 401, 403))
    async def list_events(self, repo: Repo, limit: Limit = 100, offset: Offset = 0) -> list[AuditEvent]:
        """What people did in the organisation, newest first: accounts, devices, deleted
        recordings, edge-model rollouts (owners and admins)."""
        return await events(repo, limit, offset)
