"""Headers every response carries: ``X-Content-Type-Options: nosniff`` (a browser never runs a body as another
type than declared) and, except on the docs' static assets, ``Cache-Control: no-store`` (no proxy or browser
keeps a copy of data, tokens or errors). A pure ASGI middleware: it costs the hot path one wrapped ``send``."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOT_STORED = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]
CACHEABLE = [(b"x-content-type-options", b"nosniff")]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, cacheable_prefix: str) -> None:
        self.app, self.cacheable_prefix = app, cacheable_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        added = CACHEABLE if path.startswith(self.cacheable_prefix) else NOT_STORED

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def as_dict() -> dict[str, str]:
    """The headers of an API response, for a response made outside the middleware (the 500 handler's)."""
    return {name.decode(): value.decode() for name, value in NOT_STORED}
