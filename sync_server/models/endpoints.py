from __future__ import annotations

import anyio.to_thread
from litestar import Controller, get
from litestar.params import FromPath

from sync_server.deps import Models, Repo
from sync_server.errors import Conflict, ResourceNotFound, problem_responses
from sync_server.models import lifecycle
from sync_server.models.evaluation import agreement, evaluate
from sync_server.models.schemas import ActiveAgreement, ModelEvaluation


class ModelEvaluationController(Controller):
    path = "/v1/model/evaluation"
    tags = ["models"]
    opt = {"needs": "admin"}

    @get("/{version:str}", responses=problem_responses(401, 403, 404, 409))
    async def evaluation(self, version: FromPath[str], repo: Repo, models: Models) -> ModelEvaluation:
        """A registered server version on this tenant's nights, before anyone promotes it:
        against the stages people scored (labels), and against the active model where
        both have scored an epoch (a shadow version is scored nightly beside it)."""
        if version not in models.registered_versions("server"):
            raise ResourceNotFound(f"no server model {version} is registered")
        try:
            model = await anyio.to_thread.run_sync(lifecycle.load_server_model, models, version)
        except lifecycle.LifecycleError as exc:
            raise Conflict(str(exc)) from exc
        labelled = await evaluate(repo.conn, model, repo.tenant_id)
        active = models.server.version if models.server is not None else None
        if active is None or active == version:
            compared = ActiveAgreement(active, 0, None, None)
        else:
            compared = (await agreement(repo.conn, version, active, repo.tenant_id)).summary()
        return ModelEvaluation(version=version, labels=labelled.summary(), active=compared)
