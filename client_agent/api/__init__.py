"""The client agent's HTTP shell: the routers by resource, API keys, and the one place where domain errors
become HTTP statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from client_agent.api import contractors, dashboard, market, tasks
from client_agent.errors import ClientError, Conflict, Invalid, NotFound, Overloaded
from client_agent.service import ClientService
from shared.runtime.observability import MetricsMiddleware
from shared.security.auth import ApiKeys, AuthError

PUBLIC_PATHS = frozenset({"/health", "/metrics"})
STATUS: dict[type[ClientError], int] = {NotFound: 404, Conflict: 409, Invalid: 422, Overloaded: 429}


def create_app(service: ClientService, api_keys: ApiKeys | None = None, results_dir: Path | None = None) -> FastAPI:
    """`api_keys`: the keys the API takes (bearer or X-API-Key), each rate limited; none: open (a local market).
    `results_dir`: a simulator results folder whose plots the dashboard shows."""
    keys = api_keys or ApiKeys()

    async def require_key(request: Request) -> None:
        path = request.url.path
        if path in PUBLIC_PATHS or path.startswith("/dashboard"):  # the page asks for a key itself
            return
        try:
            keys.check_request(request.headers)
        except AuthError as error:
            raise StarletteHTTPException(error.status, error.message, error.headers()) from None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        await service.close()

    app = FastAPI(
        title="COALESCE client agent",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(require_key)],
        description="Submit tasks; COALESCE decides per subtask whether to hire a contractor over A2A.",
    )
    app.state.service = service
    app.state.results_dir = results_dir
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    app.mount("/dashboard/static", StaticFiles(directory=dashboard.DASHBOARD / "static"), name="dashboard-static")
    for router in (tasks.router, contractors.router, market.router, dashboard.router):
        app.include_router(router)

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        status = next(code for kind, code in STATUS.items() if isinstance(error, kind))
        return JSONResponse({"error": error.message}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in error.errors()[:20]]
        return JSONResponse({"error": "invalid request", "detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

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
