from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from sync_server.bounds import Limit, Offset
from sync_server.deps import Repo
from sync_server.errors import InvalidInput, UnsupportedMediaType, problem_responses
from sync_server.recordings import labels, service
from sync_server.recordings.schemas import LabelsIn, LabelsOut, RecordingCreate, RecordingOut, RecordingUpdate


class RecordingController(Controller):
    path = "/v1/recordings"
    tags = ["recordings"]
    opt = {"needs": "user"}

    @post("/", responses=problem_responses(400, 401, 403, 404, 422))
    async def create_recording(self, data: JSONBody[RecordingCreate], repo: Repo) -> RecordingOut:
        return await service.create_recording(repo, data)

    @get("/", responses=problem_responses(400, 401, 403))
    async def list_recordings(self, repo: Repo, limit: Limit = 100, offset: Offset = 0) -> list[RecordingOut]:
        return await service.list_recordings(repo, limit, offset)

    @get("/{recording_id:uuid}", responses=problem_responses(401, 403, 404))
    async def get_recording(self, recording_id: FromPath[uuid.UUID], repo: Repo) -> RecordingOut:
        return await service.get_recording(repo, recording_id)

    @patch("/{recording_id:uuid}", responses=problem_responses(400, 401, 403, 404, 422))
    async def update_recording(
        self, recording_id: FromPath[uuid.UUID], data: JSONBody[RecordingUpdate], repo: Repo
    ) -> RecordingOut:
        """Rename the recording or end its night (``ended_at``; ``null`` opens it again).
        An open night's window reaches 24 hours from its start, no further."""
        return await service.update_recording(repo, recording_id, data)

    @delete("/{recording_id:uuid}", responses=problem_responses(401, 403, 404))
    async def delete_recording(self, recording_id: FromPath[uuid.UUID], repo: Repo) -> None:
        """Delete the recording. The device's epochs, stages and labels stay."""
        await service.delete_recording(repo, recording_id)

    @put("/{recording_id:uuid}/labels", responses=problem_responses(400, 401, 403, 404, 415, 422))
    async def put_labels(
        self,
        recording_id: FromPath[uuid.UUID],
        request: Request[Any, Any, Any],
        repo: Repo,
        scorer: FromQuery[str] = "",
    ) -> LabelsOut:
        """Replace the recording's stage labels, as scored by people (PSG), with these.

        JSON: ``{"scorer": "...", "epochs": [{"start": "...", "stage": "N2"}, ...]}``; or
        CSV (``text/csv``, the scorer as ``?scorer=``): a ``start,stage`` header, then one
        row per epoch. Stages: wake, light, deep, rem, or W, N1, N2, N3, N4, R. Each start
        must be a stored epoch's (the GET lists them). Models are evaluated on labels:
        ``python -m sync_server models evaluate``."""
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if media_type == "text/csv":
            data = labels.parse_csv(body, scorer)
        elif media_type == "application/json":
            try:
                data = msgspec.json.decode(body, type=LabelsIn)
            except msgspec.DecodeError as exc:
                raise InvalidInput(str(exc)) from exc
        else:
            raise UnsupportedMediaType(f"content-type {media_type or '(none)'}: send application/json or text/csv")
        return await labels.replace_labels(repo, recording_id, data)

    @get("/{recording_id:uuid}/labels", responses=problem_responses(401, 403, 404))
    async def get_labels(self, recording_id: FromPath[uuid.UUID], repo: Repo) -> LabelsOut:
        """Every stored epoch of the recording with its stage label, where it has one."""
        return await labels.read_labels(repo, recording_id)
