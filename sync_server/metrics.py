"""Prometheus metrics: the domain's, and every routed request's (HttpMetrics).

Labels are bounded sets (outcomes, model versions, route templates), never raw paths or ids.
"""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import Counter, Histogram

EPOCHS_INGESTED = Counter("noctis_epochs_ingested_total", "Epochs received by ingest, by outcome", ["outcome"])
PREDICTIONS_SERVED = Counter("noctis_predictions_total", "Epochs scored by /v1/predict", ["model_version"])
INFERENCE_SECONDS = Histogram("noctis_inference_seconds", "Time in the server model per predict call")

# Publish every outcome from the start, so dashboards and rate() see zeros, not gaps.
for _outcome in ("accepted", "duplicate", "rejected"):
    EPOCHS_INGESTED.labels(_outcome)


# The series and labels Litestar's PrometheusMiddleware (prefix noctis_http) published,
# so dashboards keep working.
HTTP_LABELS = ["method", "path", "status_code", "app_name"]
HTTP_REQUESTS = Counter("noctis_http_requests_total", "Total requests", HTTP_LABELS)
HTTP_SECONDS = Histogram("noctis_http_request_duration_seconds", "Request duration, in seconds", HTTP_LABELS)


class HttpMetrics:
    """Counts every routed request and times it to its response body, by method, route
    template and status. Litestar's PrometheusMiddleware did this at a tenth of the CPU
    of a kept night's predict: a Request object, a label dict and four label lookups,
    and an in-progress gauge (two more writes to the multiprocess files) per request;
    noctis_requests_admitted is that gauge now. Here a request's two series are looked
    up once per (method, route, status). Requests admission sheds never get here:
    noctis_requests_shed counts those."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        template = scope.get("path_template")
        if scope["type"] != ScopeType.HTTP or template is None or template == "/metrics":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        started = answered = time.perf_counter()
        status = 500  # if the app raises with nothing sent, the server answers 500

        async def timed_send(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                answered = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            key = (method, template, status)
            series = self.series.get(key)
            if series is None:
                labels = (method, template, str(status), "noctis")
                series = self.series[key] = (HTTP_REQUESTS.labels(*labels), HTTP_SECONDS.labels(*labels))
            series[0].inc()
            series[1].observe(answered - started)
