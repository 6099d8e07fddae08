"""Security headers on every answer, errors and unknown paths included (a before-send
hook: it sees every response the application starts), and content negotiation."""

from __future__ import annotations

import functools

from litestar.types import Message, Scope

# The API serves JSON and SVG, never pages: nothing may load, run or frame anything.
API_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]
# The interactive API docs under /schema load their own scripts and styles.
DOCS_HEADERS = API_HEADERS[:3]
# The web app's pages: their own styles inline, one script of their own (the live view),
# which talks to their own origin only.
APP_HEADERS = [
    *API_HEADERS[:3],
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
    (b"cache-control", b"no-store"),
]


async def add_security_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    path = scope["path"]
    extra = DOCS_HEADERS if path.startswith("/schema") else APP_HEADERS if path.startswith("/app") else API_HEADERS
    headers = list(message.get("headers", []))
    present = {bytes(name).lower() for name, _ in headers}
    message["headers"] = headers + [header for header in extra if header[0] not in present]


def header_values(scope: Scope, name: bytes) -> list[str]:
    """A request header's values straight from the ASGI scope (names arrive in lower
    case): cheaper than the Headers mapping Litestar builds from all of them."""
    return [value.decode("latin-1") for key, value in scope["headers"] if key == name]


@functools.lru_cache(maxsize=256)  # clients send a few distinct values, each on every request
def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (RFC 9110 12.5.3: by name or by
    "*", unless its weight is 0)."""
    weights = {}
    for item in accept_encoding.lower().split(","):
        coding, _, parameters = item.partition(";")
        weight = 1.0
        name, _, value = parameters.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = float(value)
            except ValueError:
                weight = 0.0
        weights[coding.strip()] = weight
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0
