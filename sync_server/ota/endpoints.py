from __future__ import annotations

from litestar import Controller, Response, get
from litestar.params import FromPath

from sync_server.deps import Config, Conn, Models
from sync_server.errors import problem_responses
from sync_server.ota import service
from sync_server.ota.schemas import OtaOffer, PublicKey
from sync_server.security import device_guard, user_guard


class OtaController(Controller):
    path = "/v1/ota"
    tags = ["ota"]

    @get("/manifest", guards=[device_guard], responses=problem_responses(401, 403, 503))
    async def manifest(self, conn: Conn, models: Models, settings: Config) -> OtaOffer:
        """The active edge model's signed manifest; the device installs it if the version is new."""
        return await service.current_offer(conn, models, settings)

    @get("/models/{version:str}", guards=[device_guard], responses=problem_responses(401, 403, 404, 503))
    async def model(self, version: FromPath[str], models: Models) -> Response[bytes]:
        """The bytes of a registered edge model (verify them against the signed manifest)."""
        _, model = service.edge_model(models, version)
        return Response(model, media_type="application/octet-stream")

    @get("/public-key", guards=[user_guard], responses=problem_responses(401, 403))
    async def public_key(self, settings: Config) -> PublicKey:
        """The key devices are provisioned with to verify manifests."""
        return service.public_key(settings)
