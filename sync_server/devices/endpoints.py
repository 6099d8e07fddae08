from __future__ import annotations

import uuid
from datetime import datetime

from litestar import Controller, Response, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from sync_server.bounds import Limit, Offset
from sync_server.deps import Models, Repo
from sync_server.devices import export, service
from sync_server.devices.schemas import DeviceCreate, DeviceCreated, DeviceOut
from sync_server.errors import problem_responses

MANAGE_ANSWERS = problem_responses(401, 403, 404)


class DeviceController(Controller):
    path = "/v1/devices"
    tags = ["devices"]
    opt = {"needs": "user"}

    @post("/", needs="admin", responses=problem_responses(400, 401, 403, 422))
    async def create_device(self, data: JSONBody[DeviceCreate], repo: Repo) -> DeviceCreated:
        """Register a device; the answer carries its secret, shown this once."""
        return await service.create_device(repo, data)

    @get("/", responses=problem_responses(400, 401, 403))
    async def list_devices(self, repo: Repo, limit: Limit = 100, offset: Offset = 0) -> list[DeviceOut]:
        return await service.list_devices(repo, limit, offset)

    @get("/{device_id:uuid}", responses=problem_responses(401, 403, 404))
    async def get_device(self, device_id: FromPath[uuid.UUID], repo: Repo) -> DeviceOut:
        return await service.get_device(repo, device_id)

    @get("/{device_id:uuid}/epochs.csv", responses=problem_responses(400, 401, 403, 404, 422))
    async def export_epochs(
        self,
        device_id: FromPath[uuid.UUID],
        repo: Repo,
        models: Models,
        start: FromQuery[datetime | None] = None,
        end: FromQuery[datetime | None] = None,
    ) -> Response[str]:
        """The device's epochs in [start, end) as CSV (at most 31 days; by default the last
        31): features (empty = missing), the edge stage and the active server model's
        stored stage. A month at a time exports everything the device ever sent."""
        start, end = export.window(start, end)
        version = models.server.version if models.server else None
        body = await export.epochs_csv(repo, device_id, version, start, end)
        filename = f"noctis-{device_id}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
        headers = {"content-disposition": f'attachment; filename="{filename}"'}
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)

    @post("/{device_id:uuid}/disable", status_code=200, needs="admin", responses=MANAGE_ANSWERS)
    async def disable_device(self, device_id: FromPath[uuid.UUID], repo: Repo) -> DeviceOut:
        """Refuse the device from its next request on; what it stored stays."""
        return await service.set_disabled(repo, device_id, True)

    @post("/{device_id:uuid}/enable", status_code=200, needs="admin", responses=MANAGE_ANSWERS)
    async def enable_device(self, device_id: FromPath[uuid.UUID], repo: Repo) -> DeviceOut:
        """Let the device exchange its secret for a token again."""
        return await service.set_disabled(repo, device_id, False)

    @post("/{device_id:uuid}/secret", status_code=200, needs="admin", responses=MANAGE_ANSWERS)
    async def rotate_secret(self, device_id: FromPath[uuid.UUID], repo: Repo) -> DeviceCreated:
        """A new secret for the device (shown this once); the old secret and its tokens end now."""
        return await service.rotate_secret(repo, device_id)

    @delete("/{device_id:uuid}", needs="admin", responses=MANAGE_ANSWERS)
    async def delete_device(self, device_id: FromPath[uuid.UUID], repo: Repo) -> None:
        """Delete the device and all its data. To keep the data, disable it instead."""
        await service.delete_device(repo, device_id)
