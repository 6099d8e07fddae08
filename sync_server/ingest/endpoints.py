from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Controller, Request, post

from noctis_contract.wire import IngestAck
from sync_server.db import transaction
from sync_server.deps import Config, Engine
from sync_server.errors import UnsupportedMediaType, problem_responses
from sync_server.ingest import parse, service

BLOCK_MEDIA_TYPES = ("application/octet-stream", "application/vnd.noctis.blocks")
PARSE_ON_LOOP_BYTES = 64 * 1024


class IngestController(Controller):
    path = "/v1"
    tags = ["ingest"]
    opt = {"needs": "device"}

    @post("/epochs:ingest", status_code=200, responses=problem_responses(401, 403, 413, 415, 422, 503))
    async def ingest(self, request: Request[Any, Any, Any], engine: Engine, settings: Config) -> IngestAck:
        """Store a batch of epochs (JSON, or binary blocks as in flash) exactly once.

        The answer counts what was accepted, what was already stored and what was
        rejected and why; ``ack_seq`` is how far the device may erase its flash queue.
        Binary bodies may start with a session record (sync v2: the device's incarnation,
        the seqs it no longer holds, its health; see ``noctis_contract.session``).
        """
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "application/json":
            parser = parse.parse_json
        elif media_type in BLOCK_MEDIA_TYPES:
            parser = parse.parse_blocks
        else:
            raise UnsupportedMediaType(
                f"content-type {media_type or '(none)'}: send application/json or application/octet-stream blocks"
            )
        # The whole body is read and checked before a database connection is taken: a
        # slow upload holds a socket, never one of the pool's connections.
        body = await request.body()
        limits = (settings.max_batch_epochs, settings.max_clock_skew_seconds)
        if len(body) > PARSE_ON_LOOP_BYTES:  # thousands of epochs: tens of ms of CPU, off the event loop
            batch = await anyio.to_thread.run_sync(parser, body, *limits)
        else:
            batch = parser(body, *limits)
        # Committed before the answer is sent: no ack for a batch whose commit failed.
        async with transaction(engine, request.user.tenant_id) as conn:
            return await service.ingest(
                conn,
                request.user,
                batch,
                (settings.max_batch_epochs, settings.max_body_bytes),
                changing=request.app.state.principals.changes.announced,
            )
