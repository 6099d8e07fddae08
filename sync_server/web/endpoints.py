"""The web app's routes. Pages authenticate with a session cookie holding the same
signed token the API takes (HttpOnly, SameSite=Strict), checked against the database on
every page as API tokens are; forms carry a CSRF token that must match a cookie set
with the form (double submit). A page of another tenant is a 404, as in the API."""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, ServerSentEvent, Template

from noctis_contract.stages import STAGE_LABELS
from sync_server.accounts import service as accounts
from sync_server.accounts.throttle import credential_attempt
from sync_server.db import devices, transaction
from sync_server.deps import Config, Engine, Models
from sync_server.errors import NoctisError, NotAuthenticated, ResourceNotFound
from sync_server.models.service import active_version
from sync_server.security import Principal, issue_token, live_principal, read_token
from sync_server.tenancy import TenantRepository
from sync_server.web import data

SESSION, CSRF = "noctis_session", "noctis_csrf"
AnyRequest = Request[Any, Any, Any]
LIVE_POLL_SECONDS = 5.0


class SignedOut(Exception):
    """No valid session: the page sends the browser to the sign-in form."""


async def _principal(request: AnyRequest) -> Principal:
    token = request.cookies.get(SESSION)
    if not token:
        raise SignedOut
    state = request.app.state
    try:
        claimed = read_token(state.settings, token)
        principal = await live_principal(state.engine, claimed, state.principals)
    except NotAuthenticated as exc:
        raise SignedOut from exc
    if principal.kind != "user":
        raise SignedOut
    return principal


def _csrf_ok(request: AnyRequest, sent: str) -> bool:
    expected = request.cookies.get(CSRF, "")
    return bool(expected) and hmac.compare_digest(expected, sent)


def _with_csrf(template: str, context: dict[str, Any], status_code: int = 200) -> Template:
    token = secrets.token_urlsafe(24)
    response = Template(template, context={**context, "csrf": token}, status_code=status_code)
    response.set_cookie(CSRF, token, httponly=True, samesite="strict", path="/app")
    return response


def _secure(request: AnyRequest) -> bool:
    return request.url.scheme == "https"


def _to_sign_in(_: AnyRequest, __: SignedOut) -> Redirect:
    return Redirect("/app/login")


def _error_page(request: AnyRequest, exc: NoctisError) -> Template:
    return Template(
        "error.html", context={"status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
    )


LIVE_JS = """// The night page's live view: each epoch the device stores, as it arrives (SSE).
const list = document.getElementById("live");
if (list) {
  const source = new EventSource(list.dataset.src);
  source.addEventListener("epoch", (event) => {
    const epoch = JSON.parse(event.data);
    const item = document.createElement("li");
    item.textContent = `${epoch.start.slice(11, 16)}  seq ${epoch.seq}  ${epoch.edge_stage ?? "-"}`;
    list.prepend(item);
  });
}
"""


class WebController(Controller):
    path = "/app"
    tags = ["web"]
    include_in_schema = False
    opt = {"exclude_from_auth": True}
    exception_handlers = {SignedOut: _to_sign_in, NoctisError: _error_page}

    @get("/live.js")
    async def live_js(self) -> Response[str]:
        return Response(LIVE_JS, media_type="text/javascript", headers={"cache-control": "max-age=3600"})

    @get("/login")
    async def login_form(self) -> Template:
        return _with_csrf("login.html", {"error": None})

    @post("/login", status_code=303)
    async def login(
        self,
        request: AnyRequest,
        engine: Engine,
        settings: Config,
        data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED),
    ) -> Response[Any]:
        if not _csrf_ok(request, data.get("csrf", "")):
            return _with_csrf("login.html", {"error": "The form expired: please sign in again."}, 400)
        email, password = data.get("email", "").strip().lower(), data.get("password", "")
        source = request.client.host if request.client else "unknown"
        try:
            async with credential_attempt(engine, settings, email, source), engine.connect() as conn:
                principal = await accounts.authenticate_user(conn, email, password)
        except NoctisError as exc:
            return _with_csrf("login.html", {"error": exc.detail}, exc.status_code)
        token, ttl = issue_token(settings, principal)
        response = Redirect("/app/", status_code=303)
        response.set_cookie(
            SESSION, token, max_age=ttl, httponly=True, samesite="strict", secure=_secure(request), path="/app"
        )
        return response

    @post("/logout", status_code=303)
    async def logout(
        self,
        request: AnyRequest,
        data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED),
    ) -> Redirect:
        response = Redirect("/app/login", status_code=303)
        if _csrf_ok(request, data.get("csrf", "")):
            response.delete_cookie(SESSION, path="/app")
        return response

    @get("/")
    async def devices_page(self, request: AnyRequest, engine: Engine) -> Template:
        principal = await _principal(request)
        async with transaction(engine, principal.tenant_id, writes=False) as conn:
            rows = await data.device_rows(TenantRepository(conn, principal.tenant_id))
        return _with_csrf("devices.html", {"me": principal, "devices": rows})

    @get("/devices/{device_id:uuid}")
    async def device_page(self, request: AnyRequest, engine: Engine, device_id: FromPath[uuid.UUID]) -> Template:
        principal = await _principal(request)
        async with transaction(engine, principal.tenant_id, writes=False) as conn:
            repo = TenantRepository(conn, principal.tenant_id)
            row = await repo.get(devices, device_id, "device")
            drift = (await data.latest_drift(repo)).get(device_id)
            nights = await data.device_nights(repo, device_id)
        month, weeks = data.month_grid(nights, datetime.now(UTC).date())
        context = {"me": principal, "device": data.device_row(row, drift), "health": row["health"] or {}}
        return _with_csrf("device.html", {**context, "nights": nights, "month": month, "weeks": weeks})

    @get("/nights/{recording_id:uuid}")
    async def night_page(
        self, request: AnyRequest, engine: Engine, models: Models, recording_id: FromPath[uuid.UUID]
    ) -> Template:
        principal = await _principal(request)
        async with transaction(engine, principal.tenant_id, writes=False) as conn:
            page = await data.night_page(
                TenantRepository(conn, principal.tenant_id), engine, models.server, recording_id
            )
        return _with_csrf("night.html", {"me": principal, "night": page})

    @get("/admin")
    async def admin_page(self, request: AnyRequest, engine: Engine, models: Models) -> Template:
        principal = await _principal(request)
        if not principal.is_admin:
            raise ResourceNotFound("page not found")
        async with transaction(engine, principal.tenant_id, writes=False) as conn:
            repo = TenantRepository(conn, principal.tenant_id)
            active = {kind: await active_version(conn, kind) for kind in ("server", "edge")}
            rows = await data.device_rows(repo)
        versions = [
            (kind, version, models.manifest(version)["metrics"].get("kappa4"), active[kind] == version)
            for kind in ("server", "edge")
            for version in models.registered_versions(kind)
        ]
        return _with_csrf("admin.html", {"me": principal, "versions": versions, "devices": rows})

    @get("/devices/{device_id:uuid}/live")
    async def live(self, request: AnyRequest, engine: Engine, device_id: FromPath[uuid.UUID]) -> ServerSentEvent:
        """Server-sent events: each epoch the device stores from now on, with its edge
        stage, as JSON; the night page shows them as they come."""
        principal = await _principal(request)
        async with transaction(engine, principal.tenant_id, writes=False) as conn:
            row = await TenantRepository(conn, principal.tenant_id).get(devices, device_id, "device")
        start_after = int(row["stored_seq"])

        async def stream() -> AsyncIterator[str]:
            after = start_after
            while True:
                async with transaction(engine, principal.tenant_id, writes=False) as conn:
                    fresh = await data.new_epochs(TenantRepository(conn, principal.tenant_id), device_id, after)
                for epoch in fresh:
                    after = max(after, int(epoch["seq"]))
                    stage = epoch["edge_stage"]
                    yield json.dumps(
                        {
                            "seq": epoch["seq"],
                            "start": epoch["start_time"].isoformat(),
                            "edge_stage": None if stage is None else STAGE_LABELS[stage],
                        }
                    )
                await asyncio.sleep(LIVE_POLL_SECONDS)

        return ServerSentEvent(stream(), event_type="epoch")
