"""The client agent's HTTP shell: tasks, their events (SSE), contractors, the market and the ledger."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sse_starlette import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from client_agent.models import ContractorRegistration, ErrorBody, InputAnswer, TaskAccepted, TaskSubmission
from client_agent.registry import CardError
from client_agent.service import ClientService, ServiceError
from client_agent.stats import market_stats
from shared.auth import ApiKeys, AuthError
from shared.observability import MetricsMiddleware

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 404, 409, 422, 429, 502)}
MAX_POSITION = 2**53  # offsets and event numbers: far beyond any table, well inside every database's integers
PUBLIC_PATHS = frozenset({"/health", "/metrics"})
DASHBOARD = Path(__file__).resolve().parent / "dashboard"
RESULT_SUFFIXES = frozenset({".png", ".svg", ".md", ".csv"})


def task_view(stored: dict[str, Any]) -> dict[str, Any]:
    subtasks = []
    for sub in stored["subtasks"]:
        state = sub["state"] or {}
        subtasks.append(
            {
                "id": sub["id"],
                "status": sub["status"],
                "skill": sub["spec"].get("skill"),
                "description": sub["spec"]["description"],
                "decision": state.get("decision"),
                "cost": state.get("cost", {"estimated_usd": None, "actual_usd": 0.0}),
                "where": state.get("where"),
                "attempts": state.get("attempts", []),
                "verification": state.get("verification"),
                "artifacts": state.get("artifacts", []),
                "inputRequired": state.get("inputRequired"),
                "excluded": state.get("excluded", {}),
                "a2aTaskId": state.get("a2aTaskId"),
            }
        )
    return {
        "id": stored["id"],
        "status": stored["status"],
        "description": stored["request"]["description"],
        "createdAt": stored["created_at"],
        "updatedAt": stored["updated_at"],
        "subtasks": subtasks,
        "cost": {
            "estimated_usd": round(sum((s["cost"]["estimated_usd"] or 0.0) for s in subtasks), 6),
            "actual_usd": round(sum(s["cost"]["actual_usd"] for s in subtasks), 6),
        },
    }


def create_app(service: ClientService, api_keys: ApiKeys | None = None, results_dir: Path | None = None) -> FastAPI:
    """`api_keys`: the keys the API takes (bearer or X-API-Key), each rate limited; none: open (a local market).
    `results_dir`: a simulator results folder whose plots the dashboard shows."""
    keys = api_keys or ApiKeys()

    async def require_key(request: Request) -> None:
        path = request.url.path
        if path in PUBLIC_PATHS or path.startswith("/dashboard"):  # the page asks for a key itself
            return
        try:
            keys.check(request.headers.get("authorization"), request.headers.get("x-api-key"))
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

    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    app.mount("/dashboard/static", StaticFiles(directory=DASHBOARD / "static"), name="dashboard-static")

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(DASHBOARD / "index.html")

    @app.get("/dashboard/tasks/{task_id}", include_in_schema=False)
    async def dashboard_task(task_id: str) -> FileResponse:
        return FileResponse(DASHBOARD / "task.html")

    @app.get("/dashboard/results", include_in_schema=False)
    def results() -> dict[str, Any]:
        if results_dir is None or not results_dir.is_dir():
            return {"folder": None, "files": []}
        files = sorted(p.name for p in results_dir.iterdir() if p.is_file() and p.suffix in RESULT_SUFFIXES)
        return {"folder": results_dir.name, "files": files}

    @app.get("/dashboard/results/{name}", include_in_schema=False)
    def result_file(name: str) -> FileResponse:
        path = (results_dir / name) if results_dir is not None else None
        if path is None or path.name != name or path.suffix not in RESULT_SUFFIXES or not path.is_file():
            raise ServiceError(404, f"no result file {name!r}")
        return FileResponse(path)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = service.metrics.exposition()
        return Response(body, media_type=content_type)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status)

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

    @app.post("/v1/tasks", status_code=202, response_model=TaskAccepted, responses=ERRORS)
    async def submit(submission: TaskSubmission) -> TaskAccepted:
        task_id, status, _ = service.submit(submission)
        return TaskAccepted(id=task_id, status=status)  # type: ignore[arg-type]

    @app.get("/v1/tasks", responses=ERRORS)
    async def list_tasks(
        limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=MAX_POSITION)
    ) -> dict[str, Any]:
        return {
            "tasks": [
                {
                    "id": t["id"],
                    "status": t["status"],
                    "description": t["request"]["description"][:200],
                    "createdAt": t["created_at"],
                }
                for t in service.store.tasks(limit, offset)
            ]
        }

    @app.get("/v1/tasks/{task_id}", responses=ERRORS)
    async def get_task(task_id: str) -> dict[str, Any]:
        return task_view(service.task(task_id))

    @app.get("/v1/tasks/{task_id}/events", responses=ERRORS)
    async def task_events(
        task_id: str, request: Request, after: int = Query(0, ge=0, le=MAX_POSITION)
    ) -> EventSourceResponse:
        service.task(task_id)
        last = request.headers.get("last-event-id")
        start = int(last) if last and last.isdigit() and len(last) < 16 else after

        async def stream() -> AsyncIterator[dict[str, str]]:
            async for event in service.events.stream(task_id, start, lambda: service.is_done(task_id)):
                yield {"id": str(event["seq"]), "event": event["kind"], "data": json.dumps(event)}

        return EventSourceResponse(stream(), ping=15, send_timeout=30)

    @app.get("/v1/tasks/{task_id}/ledger", responses=ERRORS)
    async def task_ledger(task_id: str) -> dict[str, Any]:
        subtask_ids = [sub["id"] for sub in service.task(task_id)["subtasks"]]
        return {"entries": service.ledger.entries(subtask_ids=subtask_ids)}

    @app.get("/v1/events")
    async def market_events() -> EventSourceResponse:
        """Every task's events as they happen (live only; the dashboard's feed)."""
        stream = service.events.stream_market()

        async def framed() -> AsyncIterator[dict[str, str]]:
            async for event in stream:
                yield {"event": event["kind"], "data": json.dumps(event)}

        return EventSourceResponse(framed(), ping=15, send_timeout=30)

    @app.get("/v1/stats")
    async def stats() -> dict[str, Any]:
        return market_stats(service.store, service.ledger)

    @app.post("/v1/tasks/{task_id}/cancel", responses=ERRORS)
    async def cancel(task_id: str) -> dict[str, Any]:
        return {"id": task_id, "status": await service.cancel(task_id)}

    @app.post("/v1/tasks/{task_id}/input", status_code=202, responses=ERRORS)
    async def answer(task_id: str, body: InputAnswer) -> dict[str, Any]:
        if body.text is None and body.data is None:
            raise ServiceError(422, "an answer needs text or data")
        return {"id": task_id, "subtask": service.answer(task_id, body)}

    @app.post("/v1/contractors", status_code=201, responses=ERRORS)
    async def register(body: ContractorRegistration) -> JSONResponse:
        try:
            contractor, created = await service.register(body.card_url)
        except CardError as error:
            raise ServiceError(422, f"cannot register {body.card_url}: {error}") from None
        view = {
            "id": contractor.id,
            "name": contractor.card.name,
            "url": contractor.card.url,
            "card_url": contractor.card_url,
            "skills": [s.id for s in contractor.card.skills],
        }
        return JSONResponse(view, status_code=201 if created else 200)

    @app.get("/v1/contractors")
    async def contractors() -> dict[str, Any]:
        return {
            "contractors": [
                {
                    "id": c["id"],
                    "name": c["name"],
                    "card_url": c["card_url"],
                    "status": c["status"],
                    "skills": [s["id"] for s in c["card"]["skills"]],
                    "url": c["card"]["url"],
                }
                for c in service.registry.all()
            ]
        }

    @app.delete("/v1/contractors/{contractor_id}", status_code=204, responses=ERRORS)
    async def remove(contractor_id: str) -> None:
        if not service.registry.remove(contractor_id):
            raise ServiceError(404, f"contractor {contractor_id!r} not found")

    @app.get("/v1/market")
    async def market() -> dict[str, Any]:
        return {"strategy": service.config.strategy, "contractors": await service.market()}

    @app.get("/v1/ledger")
    async def ledger(
        limit: int = Query(1000, ge=1, le=10_000), offset: int = Query(0, ge=0, le=MAX_POSITION)
    ) -> dict[str, Any]:
        return service.ledger.view(limit, offset)

    return app
