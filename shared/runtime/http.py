"""A service's FastAPI app with direct routes: the few hot endpoints (the contractor's JSON-RPC endpoint) answered
ahead of the framework's middleware stack (seven layers of ASGI middleware, routing and exception handling around
one call: a large share of an echo task's time on a contractor, in a py-spy profile).

The contract of a direct route: its endpoint takes the request and returns a response, exactly as a Starlette
endpoint does, and handles its own errors (an exception it lets out is logged and answered 500, the connection
kept); it is metered like every other route (`RequestMeter`: method, path, status, latency); another method on its
path is answered 405 with `Allow`. Everything else (other paths, lifespan, websockets) goes through FastAPI as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from shared.runtime.observability import (
    FASTAPI_TELEMETRY,
    Message,
    MetricsMiddleware,
    RequestMeter,
    Scope,
    ServiceMetrics,
)

Endpoint = Callable[[Request], Awaitable[Response]]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)


def route_path(scope: Scope) -> str:
    """The path below where the app is mounted (`root_path`), as Starlette's router matches it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


class ServiceApp(FastAPI):
    """FastAPI, metered (`MetricsMiddleware`), with FastAPI's own telemetry off, and direct routes."""

    def __init__(self, metrics: ServiceMetrics, **settings: Any) -> None:
        super().__init__(telemetry=FASTAPI_TELEMETRY, **settings)
        self.add_middleware(MetricsMiddleware, metrics=metrics)
        self._meter = RequestMeter(metrics)
        self._direct: dict[str, ASGIApp] = {}

    def direct_route(self, path: str, endpoint: Endpoint, methods: tuple[str, ...]) -> None:
        """Answer `methods` on `path` with `endpoint`, ahead of the middleware stack."""
        allowed = frozenset(methods)

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            response: Response
            if scope["method"] not in allowed:
                response = PlainTextResponse("Method Not Allowed", 405, {"Allow": ", ".join(sorted(allowed))})
            else:
                try:
                    response = await endpoint(Request(scope, receive))
                except Exception:  # answered, and the connection kept (re-raising would make the server close it)
                    log.exception("internal error on %s %s", scope["method"], scope["path"])
                    response = PlainTextResponse("Internal Server Error", 500)
            await response(scope, receive, send)

        self._direct[path] = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        direct = self._direct.get(path)
        if direct is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # what `request.app` reads, as Starlette sets it
        await self._meter.around(direct, scope, receive, send, lambda: path)
