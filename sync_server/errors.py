"""One error family and one handler: every error leaves as problem-details JSON."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from sync_server.db import database_fault

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemDetails(msgspec.Struct):
    type: str
    title: str
    status: int
    detail: str


class NoctisError(Exception):
    status_code = 400
    title = "Bad request"
    type_slug = "bad-request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(NoctisError):
    status_code = 422
    title = "Invalid input"
    type_slug = "invalid-input"


class UnsupportedMediaType(NoctisError):
    status_code = 415
    title = "Unsupported media type"
    type_slug = "unsupported-media-type"


class NotAuthenticated(NoctisError):
    status_code = 401
    title = "Not authenticated"
    type_slug = "not-authenticated"


class NotPermitted(NoctisError):
    status_code = 403
    title = "Not permitted"
    type_slug = "not-permitted"


class ResourceNotFound(NoctisError):
    # Also the answer for another tenant's resources: their existence is not revealed.
    status_code = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(NoctisError):
    status_code = 409
    title = "Conflict"
    type_slug = "conflict"


class PayloadTooLarge(NoctisError):
    status_code = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


class TooManyRequests(NoctisError):
    status_code = 429
    title = "Too many requests"
    type_slug = "too-many-requests"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after_seconds)}


class ServiceUnavailable(NoctisError):
    status_code = 503
    title = "Service unavailable"
    type_slug = "unavailable"


RETRY_AFTER_SECONDS = 5
# Set in the request scope's state when a database fault was answered; the circuit
# breaker (admission.py) reads it once the answer is sent.
DATABASE_FAULT = "noctis.database_fault"


def problem_body(status: int, title: str, detail: str, slug: str) -> bytes:
    problem = ProblemDetails(type=f"https://noctis.dev/problems/{slug}", title=title, status=status, detail=detail)
    return msgspec.json.encode(problem)


def problem_response(
    status: int, title: str, detail: str, slug: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    body = problem_body(status, title, detail, slug)
    headers = dict(headers or {})
    if status == 503:
        headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="noctis"'
    return Response(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def handle_noctis_error(_: Request[Any, Any, Any], exc: NoctisError) -> Response[Any]:
    return problem_response(exc.status_code, exc.title, exc.detail, exc.type_slug, headers=exc.headers)


def handle_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    detail = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        # Litestar's validation messages name the field and the reason; keep them.
        parts = [
            f"{e.get('key', 'body')}: {e.get('message')}" if isinstance(e, dict) else str(e)
            for e in (exc.extra if isinstance(exc.extra, list) else [exc.extra])
        ]
        detail = f"{detail}: " + "; ".join(parts)
    slug = "invalid-input" if exc.status_code in (400, 422) else f"http-{exc.status_code}"
    title = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Not permitted",
        404: "Not found",
        405: "Method not allowed",
        413: "Payload too large",
        415: "Unsupported media type",
    }.get(exc.status_code, "Error")
    # Keep what the exception says about the answer (Allow on a 405).
    return problem_response(exc.status_code, title, detail, slug, headers=exc.headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if reason := database_fault(exc):
        request.scope.setdefault("state", {})[DATABASE_FAULT] = True
        log.warning("database fault on %s %s: %s: %s", request.method, request.url.path, reason, exc)
        return problem_response(503, "Service unavailable", f"{reason}; nothing was stored, retry later", "unavailable")
    # The real error goes to the log with its stack and an id; the client gets the id only.
    error_id = uuid.uuid4().hex[:12]
    log.error("error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
    return problem_response(500, "Internal error", f"the server failed; error {error_id} was logged", "internal")


def problem_responses(*status_codes: int) -> dict[int, Any]:
    """OpenAPI entries for the problem-details answers a handler can give."""
    from litestar.openapi.datastructures import ResponseSpec

    descriptions = {
        400: "The body or a parameter could not be read.",
        401: "No token, or an invalid or expired one.",
        403: "The token's principal may not use this route.",
        404: "No such resource in the caller's tenant.",
        409: "The resource already exists.",
        413: "The body or the batch is larger than the limit.",
        415: "The content type is not one this route accepts.",
        422: "The request was read but is not valid; detail says why.",
        429: "Too many failed attempts; Retry-After says when to try again.",
        503: "A dependency (the database, the model) is unavailable; retry later.",
    }
    return {
        code: ResponseSpec(data_container=ProblemDetails, description=descriptions[code], media_type=PROBLEM_MEDIA_TYPE)
        for code in status_codes
    }
