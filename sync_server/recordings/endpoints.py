from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from sync_server.bounds import Limit, Offset
from sync_server.deps import Repo
from sync_server.errors import problem_responses
from sync_server.recordings import service
from sync_server.recordings.schemas import RecordingCreate, RecordingOut
from sync_server.security import user_guard


class RecordingController(Controller):
    path = "/v1/recordings"
    tags = ["recordings"]
    guards = [user_guard]

    @post("/", responses=problem_responses(400, 401, 403, 404, 422))
    async def create_recording(self, data: JSONBody[RecordingCreate], repo: Repo) -> RecordingOut:
        return await service.create_recording(repo, data)

    @get("/", responses=problem_responses(400, 401, 403))
    async def list_recordings(self, repo: Repo, limit: Limit = 100, offset: Offset = 0) -> list[RecordingOut]:
        return await service.list_recordings(repo, limit, offset)

    @get("/{recording_id:uuid}", responses=problem_responses(401, 403, 404))
    async def get_recording(self, recording_id: FromPath[uuid.UUID], repo: Repo) -> RecordingOut:
        return await service.get_recording(repo, recording_id)
