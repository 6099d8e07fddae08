"""Bounded work per worker: admission control, a request deadline and a circuit
breaker around the database, as one ASGI middleware in front of everything else.

- The body: read here, once, and handed to Litestar as the body it has read; one
  larger than `max_body_bytes` is refused with 413 (before any of it is read when its
  length is declared).
- Admission: at most `max_concurrent_requests` requests are processed at once, and
  the bodies held (being received or processed) stay under `max_inflight_body_bytes`;
  beyond that the answer is an immediate 503 with Retry-After, before any body is
  read, so an overload sheds requests instead of queueing them until workers time out
  and memory grows. Every request on one event loop shares its CPU: a few requests
  in process keep a refusal fast, more only make everyone slower.
- Deadlines: a body must arrive within `body_deadline_seconds` (a trickled upload
  holds a socket, never a processing slot), and a request must be answered within
  `request_deadline_seconds` (a stuck query) or it is cancelled and answered 503; its
  transaction rolls back, so nothing was acknowledged. One timer a worker enforces
  them all (`Deadlines`).
- Breaker: when most recent requests failed on the database (db.database_fault), the
  breaker opens and requests fail fast with 503 for `breaker_cooldown_seconds`; then
  one request probes (half-open) and its outcome closes or re-opens it. Validation
  errors, 4xx, and cancelled clients are not failures. State in /metrics and /readyz.

Health and metrics paths pass untouched: they must answer under any load.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPRequestEvent, Message, Receive, ReceiveMessage, Scope, Send
from litestar.utils.scope.state import ScopeState
from prometheus_client import Counter, Gauge

from sync_server.db import database_fault
from sync_server.errors import DATABASE_FAULT, PROBLEM_MEDIA_TYPE, RETRY_AFTER_SECONDS, problem_body
from sync_server.settings import Settings

UNGUARDED_PATHS = ("/healthz", "/readyz", "/metrics", "/schema")
BreakerState = Literal["closed", "open", "half_open"]

BREAKER_OPEN = Gauge(
    "noctis_db_breaker_open", "1 while a worker's database circuit breaker is open", multiprocess_mode="max"
)
# Sampled by each worker's deadline timer (every 0.1 s), not written per request: a
# write to the multiprocess gauge's file twice a request was 3 % of a kept predict.
IN_FLIGHT = Gauge("noctis_requests_admitted", "Requests being served", multiprocess_mode="livesum")
SHED = Counter("noctis_requests_shed", "Requests refused at once by admission control")
BREAKER_WINDOW = 20  # the last outcomes that count


@dataclass
class Breaker:
    failure_ratio: float = 0.5
    min_failures: int = 5
    cooldown_seconds: float = 2.0
    state: BreakerState = "closed"
    opened_at: float = 0.0
    probing: bool = False
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=BREAKER_WINDOW))  # True: a database fault

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and time.monotonic() - self.opened_at >= self.cooldown_seconds:
            self.state = "half_open"
        if self.state == "half_open" and not self.probing:
            self.probing = True  # one request finds out whether the database is back
            return True
        return False

    def record(self, database_fault: bool) -> None:
        if self.state == "half_open":
            self.probing = False
            if database_fault:
                self._open()
            else:
                self._close()
            return
        self.outcomes.append(database_fault)
        failures = sum(self.outcomes)
        if failures >= self.min_failures and failures >= self.failure_ratio * len(self.outcomes):
            self._open()

    def abandon_probe(self) -> None:
        """The probing request ended before it was processed (shed, or its client went
        away): the next request probes instead."""
        self.probing = False

    def _open(self) -> None:
        self.state, self.opened_at = "open", time.monotonic()
        self.outcomes.clear()
        BREAKER_OPEN.set(1)

    def _close(self) -> None:
        self.state = "closed"
        self.outcomes.clear()
        BREAKER_OPEN.set(0)


class Deadline:
    """One request's deadline, watched by its worker's `Deadlines`. Used like
    asyncio.timeout: past the deadline the task is cancelled, and the cancellation
    leaves the `with` block as TimeoutError (one from elsewhere stays a cancellation)."""

    __slots__ = ("_cancelling", "_task", "_watched", "at", "expired")

    def __init__(self, watched: dict[asyncio.Task[object], Deadline], seconds: float) -> None:
        task = asyncio.current_task()
        assert task is not None, "a deadline needs a task"
        self._task, self._watched = task, watched
        self.at = asyncio.get_running_loop().time() + seconds
        self.expired = False

    def move(self, seconds: float) -> None:
        """A new deadline, seconds from now."""
        self.at = asyncio.get_running_loop().time() + seconds

    def __enter__(self) -> Deadline:
        self._cancelling = self._task.cancelling()
        self._watched[self._task] = self
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        del self._watched[self._task]
        # Expired: the task was cancelled for it, whether or not the cancellation landed.
        if self.expired and self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
            raise TimeoutError from exc


class Deadlines:
    """The deadlines of the requests a worker has in hand, enforced by one timer that
    looks at them every `resolution` seconds (a request may run that much longer).
    A timer per request (asyncio.timeout) was a twelfth of a kept night's predict."""

    def __init__(self, resolution: float = 0.1) -> None:
        self.resolution = resolution
        self.watched: dict[asyncio.Task[object], Deadline] = {}
        self.every_tick: Callable[[], None] = lambda: None  # what else the timer does

    def start(self, seconds: float) -> Deadline:
        """The current task's deadline, seconds from now (enter it with `with`)."""
        return Deadline(self.watched, seconds)

    async def enforce(self) -> None:
        """Cancel every task past its deadline, until cancelled; runs once per worker."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.resolution)
            now = loop.time()
            for task, deadline in list(self.watched.items()):
                if not deadline.expired and deadline.at <= now:
                    deadline.expired = True
                    task.cancel()
            self.every_tick()


def _refusal(status: Literal[413, 503], detail: str) -> tuple[Message, Message]:
    # Raw ASGI, not a Litestar Response: these answers leave before any route runs.
    title, slug = {413: ("Payload too large", "payload-too-large"), 503: ("Service unavailable", "unavailable")}[status]
    body = problem_body(status, title, detail, slug)
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        # The rest of a refused request's body is never read: closing the connection tells
        # the client at once, instead of leaving it blocked sending a body nobody reads.
        (b"connection", b"close"),
    ]
    if status == 503:
        headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    end: Message = {"type": "http.response.body", "body": body, "more_body": False}
    return start, end


def admission_control(settings: Settings, breaker: Breaker, deadlines: Deadlines) -> type:
    """The middleware class for Litestar's app-level middleware list. The app's lifespan
    runs `deadlines.enforce()`."""

    too_large = f"the body is larger than the limit of {settings.max_body_bytes} bytes"

    class AdmissionControl:
        processing = 0  # requests past their body, in the handlers
        buffered = 0  # body bytes received and held, of every request in this worker

        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"].startswith(UNGUARDED_PATHS):
                await self.app(scope, receive, send)
                return
            cls = AdmissionControl
            # Refusals come first and cost nothing: no body is read for them.
            if not breaker.allow():
                await _send_all(send, _refusal(503, "the database is failing; the server waits before it tries again"))
                return
            probe = breaker.state == "half_open"  # allowed in half-open: this request is the probe
            # The body is read under its own deadline before the request counts as
            # processing: a trickled upload holds a socket and its few bytes, never a slot.
            # Then the same deadline, moved, is the request's.
            held = 0
            processing = False
            raised: Exception | None = None
            try:  # every way out below releases what this request took (and the probe)
                declared = _content_length(scope)  # refused or shed before any body is read
                if declared > settings.max_body_bytes:
                    await _send_all(send, _refusal(413, too_large))
                    return
                if cls.processing >= settings.max_concurrent_requests or (
                    cls.buffered + declared > settings.max_inflight_body_bytes
                ):
                    await self._shed(send)
                    return
                with deadlines.start(settings.body_deadline_seconds) as deadline:
                    chunks = []
                    while True:
                        message = await receive()
                        if message["type"] != "http.request":
                            return  # the client went away
                        chunk = message.get("body", b"")
                        held += len(chunk)
                        cls.buffered += len(chunk)
                        if held > settings.max_body_bytes:  # more than it declared, or no declaration
                            await _send_all(send, _refusal(413, too_large))
                            return
                        if cls.buffered > settings.max_inflight_body_bytes:
                            await self._shed(send)
                            return
                        chunks.append(chunk)
                        if not message.get("more_body", False):
                            break
                    if cls.processing >= settings.max_concurrent_requests:
                        await self._shed(send)
                        return
                    deadline.move(settings.request_deadline_seconds)
                    processing = True
                    cls.processing += 1
                    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    # Where Litestar looks for a body it has read: handlers take it from here.
                    ScopeState.from_scope(scope).body = body
                    await self.app(scope, _replay(body, receive), send)
            except TimeoutError:
                if not processing:
                    await _send_all(send, _refusal(503, "the body arrived too slowly; nothing was stored, retry later"))
                elif not ScopeState.from_scope(scope).response_started:  # Litestar's record of it
                    await _send_all(send, _refusal(503, "the request took too long; nothing was stored, retry later"))
            except Exception as exc:  # raised in a middleware (authentication): answered further out
                raised = exc
                raise
            finally:
                cls.buffered -= held
                if processing:
                    cls.processing -= 1
                    answered_fault = bool(scope.get("state", {}).get(DATABASE_FAULT))
                    breaker.record(answered_fault or (raised is not None and database_fault(raised) is not None))
                elif probe:
                    breaker.abandon_probe()

        async def _shed(self, send: Send) -> None:
            SHED.inc()
            await _send_all(send, _refusal(503, "the server is at capacity; retry later"))

    deadlines.every_tick = lambda: IN_FLIGHT.set(AdmissionControl.processing)
    return AdmissionControl


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body, once, as the handler would have received it; then the real channel
    (which reports the client's disconnect)."""
    sent = False

    async def replayed() -> ReceiveMessage:
        nonlocal sent
        if not sent:
            sent = True
            message: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
            return message
        return await receive()

    return replayed


def _content_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return 0
    return 0


async def _send_all(send: Send, messages: tuple[Message, Message]) -> None:
    for message in messages:
        await send(message)
