from __future__ import annotations

import uuid

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from sync_server.bounds import Limit, Offset
from sync_server.deps import Repo
from sync_server.devices import service
from sync_server.devices.schemas import DeviceCreate, DeviceCreated, DeviceOut
from sync_server.errors import problem_responses
from sync_server.security import admin_guard, user_guard


class DeviceController(Controller):
    path = "/v1/devices"
    tags = ["devices"]
    guards = [user_guard]

    @post("/", guards=[admin_guard], responses=problem_responses(400, 401, 403, 422))
    async def create_device(self, data: JSONBody[DeviceCreate], repo: Repo) -> DeviceCreated:
        """Register a device; the answer carries its secret, shown this once."""
        return await service.create_device(repo, data)

    @get("/", responses=problem_responses(400, 401, 403))
    async def list_devices(self, repo: Repo, limit: Limit = 100, offset: Offset = 0) -> list[DeviceOut]:
        return await service.list_devices(repo, limit, offset)

    @get("/{device_id:uuid}", responses=problem_responses(401, 403, 404))
    async def get_device(self, device_id: FromPath[uuid.UUID], repo: Repo) -> DeviceOut:
        return await service.get_device(repo, device_id)
