"""The FastAPI application, served by ``python -m api.serve`` (settings from the environment)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import console, docs, headers, health, logs, metrics, problems
from api.console.errors import error_page, is_console
from api.deps import Platform
from api.routers import audit, auth, data, deliveries, items, notifications, policy, review, subscriptions
from api.routers import freshness as freshness_router
from api.routers import runs as runs_router
from api.routers import utilisation as utilisation_router
from catalog.db import make_engine
from catalog.delivery.lookups import LookUpConnections
from catalog.ingest.manifest import follow_catalog
from catalog.ops.metrics import CatalogFigures
from catalog.settings import Settings, get_settings

MAX_BODY_BYTES = 1 << 20  # a catalog item declaration with hundreds of fields fits with room to spare
LARGER_BODIES = {review.DECISIONS_PATH: review.DECISIONS_MAX_BYTES}  # 20,000 field decisions at once


class BodySizeLimit:
    """Refuses request bodies over the cap with 413, before the endpoint reads them: a declared length at once, a
    streamed (chunked) body once it passes the cap; it is read whole, within the cap, before the app sees any of it
    (a refusal raised while the endpoint reads would come out of FastAPI's body parsing as a 400). A few routes
    whose bodies are batches have a larger cap of their own (``per_path``)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, per_path: dict[str, int] | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.per_path = LARGER_BODIES if per_path is None else per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.per_path.get(scope["path"], self.max_bytes)
        request_headers = dict(scope["headers"])
        declared = request_headers.get(b"content-length")
        too_large = declared is not None and declared.isdigit() and int(declared) > max_bytes
        if not too_large and b"transfer-encoding" in request_headers:  # the server holds a declared length to its word
            body = await _read_within(receive, max_bytes)
            if body is None:
                too_large = True
            else:
                receive = _replaying(body, receive)
        if too_large:
            response = problems.problem(413, "request_too_large", _limit(max_bytes), scope["path"])
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class NulInAddressRefused:
    """Refuses an address (path or query) holding a NUL character as invalid input, before any endpoint: PostgreSQL
    text cannot hold one, so it would otherwise reach the database as an error (bodies: the models' ``NO_NUL``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or _holds_nul(scope.get("query_string", b""))):
            request = Request(scope)
            if is_console(request):
                response: Response = error_page(request, 400)
            else:
                response = problems.problem(422, "invalid_request", "the address holds a NUL character", scope["path"])
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _holds_nul(query: bytes) -> bool:
    return b"\x00" in query or b"%00" in query


async def _read_within(receive: Receive, max_bytes: int) -> Message | None:
    """The whole body as one message, None as soon as it passes ``max_bytes`` (a disconnect comes as it came)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return message
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > max_bytes:
            return None
        if not message.get("more_body", False):
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}


def _replaying(first: Message, receive: Receive) -> Receive:
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def _limit(max_bytes: int) -> str:
    return f"request bodies are limited to {max_bytes} bytes"


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": problems.TITLES[status], "content": {problems.PROBLEM_JSON: {}}}
    for status in (401, 403, 404, 422, 429, 503)
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = follow_catalog(make_engine(settings.resolved_database_url), settings.pipeline_manifest_location)
        app.state.platform = Platform(engine=engine, settings=settings)
        app.state.metrics_registry = metrics.exposition_registry(CatalogFigures(engine, settings.metrics_cache_seconds))
        # Database work runs in worker threads; a few contend far less for the GIL than anyio's default 40
        # (measured: 424 requests/s with 4 threads per process, about 300 with 40).
        to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        # Single verification look-ups on PostgreSQL run on the event loop, over connections of their own.
        look_ups = app.state.look_ups = LookUpConnections(engine) if engine.dialect.name == "postgresql" else None
        gc.freeze()  # what start-up made lives as long as the process: the collector need not scan it again
        yield
        if look_ups is not None:
            await look_ups.close()
        engine.dispose()

    app = FastAPI(
        title="datashare",
        summary="Government data sharing: catalog, subscriptions and masked data delivery.",
        version="0.1.0",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        docs_url=None,
        redoc_url=None,
    )
    logs.redact_access_log()
    problems.install(app)
    if settings.serves_api_docs:
        docs.install(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(items.router)
    app.include_router(subscriptions.router)
    app.include_router(data.router)
    app.include_router(deliveries.router)
    app.include_router(review.router)
    app.include_router(notifications.router)
    app.include_router(runs_router.router)
    app.include_router(freshness_router.router)
    app.include_router(audit.router)
    app.include_router(policy.router)
    app.include_router(utilisation_router.router)
    console.install(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(NulInAddressRefused)
    app.add_middleware(headers.SecurityHeaders, cacheable_prefix=docs.ASSETS_PATH)  # on a 413 too
    metrics.install(app, settings)  # outermost: every response is counted, a 413 too
    return app
