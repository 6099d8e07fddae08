from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath

from sync_server.deps import Config, Models, Repo
from sync_server.errors import problem_responses
from sync_server.ota import service
from sync_server.ota.schemas import OtaOffer, PublicKey
from sync_server.security import Principal


class OtaController(Controller):
    path = "/v1/ota"
    tags = ["ota"]

    @get("/manifest", needs="device", responses=problem_responses(401, 403, 503))
    async def manifest(
        self, request: Request[Principal, Any, Any], repo: Repo, models: Models, settings: Config
    ) -> OtaOffer:
        """The signed manifest of the edge model this device should run: the newest
        rollout that includes it (staged by tenant and percentage), else the active edge
        model. The device installs it if its rollout number is higher than its own."""
        return await service.current_offer(repo, request.user.id, models, settings)

    @get("/models/{version:str}", needs="device", responses=problem_responses(401, 403, 404, 503))
    async def model(self, version: FromPath[str], models: Models) -> Response[bytes]:
        """The bytes of a registered edge model (verify them against the signed manifest)."""
        _, model = service.edge_model(models, version)
        return Response(model, media_type="application/octet-stream")

    @get("/public-key", needs="user", responses=problem_responses(401, 403))
    async def public_key(self, settings: Config) -> PublicKey:
        """The key devices are provisioned with to verify manifests."""
        return service.public_key(settings)
