"""Prometheus metrics of the API at ``GET /metrics``: requests and their latency by route template and status,
refusals by reason, rows served; and the catalog's own figures read from the database (catalog/ops/metrics.py).

Several API processes (``python -m api.serve --workers N``) each write their counts to files of their own in the
directory ``PROMETHEUS_MULTIPROC_DIR`` names (api/serve.py sets it up before the workers start); whichever process
answers a scrape sums them all. One process alone keeps them in memory.

Labels are bounded: a route is its path template (``/items/{code}/data``, never the path asked for, nor its query),
an unknown method is ``other``, a reason is a problem's code, a department is a department code.

Who may read: metrics name no person but do show department codes and volumes. With ``DATASHARE_METRICS_TOKEN`` set,
a scrape sends it as a bearer token (compared in constant time); outside local mode, without one, /metrics is not
served at all; in local mode without one it is open.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems
from catalog import logsafe
from catalog.settings import Settings

METRICS_PATH = "/metrics"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable: it picks its storage by it at import
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "unrouted"  # answered before routing (a body too large) or matching no route (404)
ANONYMOUS = "anonymous"
log = logsafe.logger(__name__)
REFUSAL_STATUSES = frozenset({401, 403, 404, 409, 413, 429, 503})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)  # downloads take long

REQUESTS = Counter(
    "datashare_http_requests", "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)  # fmt: skip
LATENCY = Histogram(
    "datashare_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (a streamed download's last byte), by method, route "
    "template and status",
    ["method", "route", "status"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
REFUSALS = Counter(
    "datashare_refusals", "Requests refused (401, 403, 404, 409, 413, 429, 503), by the problem's code", ["reason"]
)
ROWS_SERVED = Counter(
    "datashare_rows_served", "Data rows sent to callers, by format and the caller's department",
    ["format", "department"],
)  # fmt: skip


def count_refusal(status: int, code: str) -> None:
    """Called where every problem response is made (api/problems.py): a refusal is counted once, by its code."""
    if status in REFUSAL_STATUSES:
        REFUSALS.labels(code).inc()


def count_rows_served(kind: str, department: str | None, rows: int) -> None:
    ROWS_SERVED.labels(kind, department or ANONYMOUS).inc(rows)


class RequestMetrics:
    """Counts and times every HTTP request, by the template of the route that answered it. A pure ASGI middleware,
    outermost so that the limits' refusals (413) are counted too: it costs a request two clock readings, a wrapped
    ``send`` and two increments of series it finds in a dict."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # bounded: methods x routes x statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before it starts a response

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "other"
        key = (method, getattr(scope.get("route"), "path", UNROUTED), status)  # the router put the route in the scope
        series = self._series.get(key)
        if series is None:
            labels = (key[0], key[1], str(status))
            series = self._series[key] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        series[0].inc()
        series[1].observe(seconds)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR) or None


class _ThisProcess(Collector):
    """The metrics of this process alone: prometheus-client's default registry (ours, and the process's own)."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def exposition_registry(figures: Collector) -> CollectorRegistry:
    """What a scrape shows: every API process's counts (summed from their files) or this process's, and ``figures``."""
    registry = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())
    registry.register(figures)
    return registry


def require_metrics_token(settings: Settings, authorization: str | None) -> None:
    token = settings.metrics_token
    if token is None:
        if settings.mode == "local":
            return
        raise problems.ApiProblem(404, "not_found", "Not Found")  # not served without a token outside local mode
    scheme, _, presented = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
        raise problems.unauthenticated("send the metrics token as 'Authorization: Bearer <token>'")


router = APIRouter(tags=["ops"], include_in_schema=False)  # Prometheus text for the scraper, not the API's contract


@router.get(METRICS_PATH)
def metrics(request: Request) -> Response:
    """A worker thread: the catalog's figures may ask the database (at most every few seconds per process)."""
    require_metrics_token(request.app.state.platform.settings, request.headers.get("authorization"))
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, settings: Settings) -> None:
    """The endpoint and the middleware (added last: outermost). The lifespan sets ``app.state.metrics_registry``."""
    app.include_router(router)
    app.add_middleware(RequestMetrics)
    if settings.mode != "local" and settings.metrics_token is None:
        log.warning("DATASHARE_METRICS_TOKEN is not set: /metrics is not served")
