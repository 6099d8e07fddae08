from __future__ import annotations

import uuid

from litestar import Controller, post
from litestar.params import FromPath, JSONBody

from sync_server.deps import Models, Repo
from sync_server.errors import problem_responses
from sync_server.predict import service
from sync_server.predict.schemas import PredictRequest, PredictResponse, RescoreResult
from sync_server.security import user_guard


class PredictController(Controller):
    path = "/v1/predict"
    tags = ["predict"]
    guards = [user_guard]

    @post("/", status_code=200, responses=problem_responses(400, 401, 403, 404, 422, 503))
    async def predict(self, data: JSONBody[PredictRequest], repo: Repo, models: Models) -> PredictResponse:
        """Stage a stored recording, or inline epochs, with the active server model."""
        # Take the model reference once: a hot swap mid-request cannot change it.
        return await service.predict(repo, models.server, data)

    @post("/recordings/{recording_id:uuid}", status_code=200, responses=problem_responses(401, 403, 404, 503))
    async def rescore(self, recording_id: FromPath[uuid.UUID], repo: Repo, models: Models) -> RescoreResult:
        """Score a stored recording authoritatively and keep the predictions (idempotent)."""
        return await service.rescore_recording(repo, models.server, recording_id)
