"""The client agent's HTTP shell: the routers by resource, API keys, and the one place where domain errors
become HTTP statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from client_agent.api import a2a, contractors, dashboard, market, tasks
from client_agent.api.deps import error_answer, invalid, refused
from client_agent.api.mcp import MCP_PATH, McpFace
from client_agent.errors import ClientError
from client_agent.service import ClientService
from contractor_agent.app import CARD_PATHS
from shared.runtime.http import MAX_BODY_BYTES, ServiceApp
from shared.security.auth import ApiKeys, AuthError

PUBLIC_PATHS = frozenset({"/health", "/metrics", *CARD_PATHS})


def create_app(
    service: ClientService,
    api_keys: ApiKeys | None = None,
    results_dir: Path | None = None,
    public_url: str | None = None,
) -> FastAPI:
    """`api_keys`: the keys the API takes (bearer or X-API-Key), each rate limited; none: open (a local market).
    `results_dir`: a simulator results folder whose plots the dashboard shows. `public_url`: where the service is
    reached; with it, the service is also an A2A agent (`client_agent.api.a2a`, its card at the well-known paths)
    and an MCP server at `/mcp` (`client_agent.api.mcp`)."""
    keys = api_keys or ApiKeys()

    async def require_key(request: Request) -> None:
        path = request.url.path
        if path in PUBLIC_PATHS or path.startswith("/dashboard"):  # the page asks for a key itself
            return
        try:
            keys.check_request(request.headers)
        except AuthError as error:
            raise StarletteHTTPException(error.status, error.message, error.headers()) from None

    faces: list[a2a.ExchangeFace | McpFace] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        async with AsyncExitStack() as stack:
            for face in faces:
                await stack.enter_async_context(face.lifespan())
            yield
        await service.close()

    app = ServiceApp(
        service.metrics,
        MAX_BODY_BYTES,
        title="COALESCE client agent",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(require_key)],
        description="Submit tasks; COALESCE decides per subtask whether to hire a contractor over A2A.",
    )
    app.state.service = service
    app.state.results_dir = results_dir
    tasks.serve_directly(app, keys)
    app.mount("/dashboard/static", StaticFiles(directory=dashboard.DASHBOARD / "static"), name="dashboard-static")
    for router in (tasks.router, contractors.router, market.router, dashboard.router):
        app.include_router(router)
    if public_url is not None:  # the service as an A2A agent and as an MCP server
        mcp = McpFace(service, public_url, keys)
        app.router.routes.append(Route(MCP_PATH, endpoint=mcp))
        faces.extend([a2a.mount(app, service, public_url, keys), mcp])

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        return refused(error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        return invalid(error.errors())

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return error_answer(str(error.detail), error.status_code, error.headers)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "contractors": len(service.registry.active()),
            "localSkills": sorted(service.local_workers),
        }

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = service.metrics.exposition()
        return Response(body, media_type=content_type)

    return app
