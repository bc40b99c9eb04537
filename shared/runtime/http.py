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
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.convertors import Convertor
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Match, compile_path

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


MAX_BODY_BYTES = 8 * 1024 * 1024  # a request body's bound, unless a service says otherwise


class BodyTooLarge(Exception):
    """A request body past its bound; the message says which, fit to show the caller."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request's body, or BodyTooLarge once it (or the length it declares) passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class BodyLimit:
    """ASGI middleware: a request whose body passes `limit` bytes is answered 413 (`{"error": ...}`) before the app
    sees any of it; any other request reaches the app with its body read already (bodies are bounded, so small)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_bounded(Request(scope, receive), self.limit)
        except BodyTooLarge as error:
            await JSONResponse({"error": str(error)}, status_code=413)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        first: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> Message:  # the body once, then what the server says next (a disconnect)
            return first.pop() if first else await receive()

        await self.app(scope, replay, send)


class _Direct:
    """A direct route: its path (a template when it has parameters), its methods and its answer."""

    def __init__(self, path: str, methods: frozenset[str], answer: ASGIApp) -> None:
        self.path, self.methods, self.answer = path, methods, answer
        self.pattern: re.Pattern[str]
        self.convertors: dict[str, Convertor[Any]]
        self.pattern, _, self.convertors = compile_path(path)

    def match(self, path: str) -> dict[str, Any] | None:
        """The template's parameters in `path`, or None when it does not match."""
        found = self.pattern.match(path)
        if found is None:
            return None
        return {name: self.convertors[name].convert(text) for name, text in found.groupdict().items()}


def route_path(scope: Scope) -> str:
    """The path below where the app is mounted (`root_path`), as Starlette's router matches it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


class ServiceApp(FastAPI):
    """FastAPI, metered (`MetricsMiddleware`), with FastAPI's own telemetry off, and direct routes. `max_body_bytes`:
    the bound of a request body on FastAPI's routes (`BodyLimit`; a direct route bounds its own)."""

    def __init__(self, metrics: ServiceMetrics, max_body_bytes: int | None = None, **settings: Any) -> None:
        super().__init__(telemetry=FASTAPI_TELEMETRY, **settings)
        if max_body_bytes is not None:
            self.add_middleware(BodyLimit, limit=max_body_bytes)
        self.add_middleware(MetricsMiddleware, metrics=metrics)
        self._meter = RequestMeter(metrics)
        self._direct: dict[str, _Direct] = {}  # by path
        self._templates: list[_Direct] = []  # paths with parameters

    def direct_route(self, path: str, endpoint: Endpoint, methods: tuple[str, ...]) -> None:
        """Answer `methods` on `path` with `endpoint`, ahead of the middleware stack. Another method on the path goes
        to FastAPI's routes when one of them serves the path, and is answered 405 otherwise."""

        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                response = await endpoint(Request(scope, receive))
            except Exception:  # answered, and the connection kept (re-raising would make the server close it)
                log.exception("internal error on %s %s", scope["method"], scope["path"])
                response = PlainTextResponse("Internal Server Error", 500)
            await response(scope, receive, send)

        direct = _Direct(path, frozenset(methods), answer)
        if direct.convertors:
            self._templates.append(direct)
        else:
            self._direct[path] = direct

    def _find(self, scope: Scope) -> _Direct | None:
        """The direct route on this request's path, its parameters put in the scope; None for every other path."""
        if scope["type"] != "http":
            return None
        path = route_path(scope)
        direct = self._direct.get(path)
        if direct is not None:
            return direct
        for template in self._templates:
            params = template.match(path)
            if params is not None:
                scope["path_params"] = params
                return template
        return None

    def _served_by_fastapi(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] is not Match.NONE for route in self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self._find(scope)
        if direct is None or (scope["method"] not in direct.methods and self._served_by_fastapi(scope)):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self  # what `request.app` reads, as Starlette sets it
        answer = direct.answer if scope["method"] in direct.methods else _refusal(direct.methods)
        await self._meter.around(answer, scope, receive, send, lambda: direct.path)


def _refusal(allowed: frozenset[str]) -> ASGIApp:
    return PlainTextResponse("Method Not Allowed", 405, {"Allow": ", ".join(sorted(allowed))})
