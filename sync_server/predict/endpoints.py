from __future__ import annotations

import uuid
from typing import Any, cast

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from noctis_contract.sleep_metrics import hypnogram_svg, summarize
from sync_server.deps import Engine, Models, Repo
from sync_server.errors import problem_responses
from sync_server.headers import accepts_gzip, header_values
from sync_server.predict import edf, service
from sync_server.predict.schemas import PredictRequest, PredictResponse, RescoreResult, SleepReport
from sync_server.security import Principal


class PredictController(Controller):
    path = "/v1/predict"
    tags = ["predict"]
    opt = {"needs": "user"}

    @post("/", status_code=200, responses=problem_responses(400, 401, 403, 404, 422, 503), read_only=True)
    async def predict(self, data: JSONBody[PredictRequest], request: Request[Principal, Any, Any]) -> PredictResponse:
        """Stage a stored recording, or inline epochs, with the active server model.

        A recording's stored predictions are served when the active model has scored the
        whole night; otherwise it is scored now, and kept once the night has ended. A kept
        night is sent gzip-compressed to clients that accept it."""
        # The engine, models and kept answers from the app's state, not as dependencies:
        # Litestar resolves several dependencies in a task group of their own, which was
        # a tenth of the CPU of a kept answer.
        # Take the model reference once: a hot swap mid-request cannot change it.
        state = request.app.state
        answer = await service.predict(
            state.engine, request.user.tenant_id, state.models.server, data, state.kept_nights
        )
        # Encoded once by the service: Litestar sends a Response as it is, the annotation
        # documents what the body holds.
        if answer.gzipped is not None and accepts_gzip(",".join(header_values(request.scope, b"accept-encoding"))):
            return cast(PredictResponse, answer.gzipped)
        return cast(PredictResponse, answer.plain)

    @post(
        "/recordings/{recording_id:uuid}",
        status_code=200,
        responses=problem_responses(401, 403, 404, 503),
        read_only=True,
    )
    async def rescore(
        self, recording_id: FromPath[uuid.UUID], repo: Repo, engine: Engine, models: Models
    ) -> RescoreResult:
        """Score a stored recording authoritatively and keep the predictions (idempotent)."""
        return await service.rescore_recording(repo, engine, models.server, recording_id)

    @get("/recordings/{recording_id:uuid}/report", responses=problem_responses(401, 403, 404, 503))
    async def report(
        self, recording_id: FromPath[uuid.UUID], repo: Repo, engine: Engine, models: Models
    ) -> SleepReport:
        """Sleep metrics of a recording (total sleep, efficiency, latency, WASO, stage minutes)."""
        night = await service.recording_night(repo, engine, models.server, recording_id)
        stages = night.stages()
        return SleepReport(
            recording_id=recording_id, model_version=night.model_version, epochs=len(stages), metrics=summarize(stages)
        )

    @get("/recordings/{recording_id:uuid}/stages.edf", responses=problem_responses(401, 403, 404, 503))
    async def edf(
        self, recording_id: FromPath[uuid.UUID], repo: Repo, engine: Engine, models: Models
    ) -> Response[bytes]:
        """The night's stages as EDF+ (the server's and the device's as hypnogram signals,
        the server's as annotations), for sleep software that reads scored PSG."""
        recording = await service.recording_row(repo, recording_id)
        night = await service.scored_night(repo, engine, service.loaded(models.server), recording)
        edge = await service.edge_stages(repo, recording)
        body = edf.night_edf(recording["started_at"], night.stages(), edge, f"Noctis {night.model_version}")
        headers = {"content-disposition": f'attachment; filename="noctis-{recording_id}.edf"'}
        return Response(body, media_type="application/octet-stream", headers=headers)

    @get("/recordings/{recording_id:uuid}/hypnogram.svg", responses=problem_responses(401, 403, 404, 503))
    async def hypnogram(
        self, recording_id: FromPath[uuid.UUID], repo: Repo, engine: Engine, models: Models
    ) -> Response[str]:
        """The night as a picture."""
        night = await service.recording_night(repo, engine, models.server, recording_id)
        svg = hypnogram_svg(night.stages(), f"recording {recording_id} ({night.model_version})")
        return Response(svg, media_type="image/svg+xml")
