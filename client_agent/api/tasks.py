"""`/v1/tasks`: submit, list, read, follow (SSE), cancel, answer input, and a task's ledger entries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from sse_starlette import EventSourceResponse, ServerSentEvent

from client_agent.api.deps import ERRORS, MAX_POSITION, Client, guarded, invalid
from client_agent.errors import Invalid
from client_agent.models import Feedback, InputAnswer, TaskAccepted, TaskSubmission
from client_agent.service import ClientService
from client_agent.state import SubtaskCost, SubtaskState
from shared.runtime import jsonio
from shared.runtime.http import MAX_BODY_BYTES, ServiceApp, read_bounded
from shared.security.auth import ApiKeys

router = APIRouter(prefix="/v1/tasks", responses=ERRORS)


def task_view(stored: dict[str, Any]) -> dict[str, Any]:
    subtasks = []
    for sub in stored["subtasks"]:
        state = SubtaskState.model_validate(sub["state"] or {}).view()
        subtasks.append(
            {
                "id": sub["id"],
                "status": sub["status"],
                "skill": sub["spec"].get("skill"),
                "description": sub["spec"]["description"],
                **state,
            }
        )
    cost = SubtaskCost(
        estimated_usd=round(sum((s["cost"]["estimatedUsd"] or 0.0) for s in subtasks), 6),
        actual_usd=round(sum(s["cost"]["actualUsd"] for s in subtasks), 6),
    )
    return {
        "id": stored["id"],
        "status": stored["status"],
        "description": stored["request"]["description"],
        "createdAt": stored["created_at"],
        "updatedAt": stored["updated_at"],
        "subtasks": subtasks,
        "cost": cost.wire(),
    }


@router.post("", status_code=202, response_model=TaskAccepted)
async def submit(submission: TaskSubmission, client: Client) -> TaskAccepted:
    task_id, status, _ = client.submit(submission)
    return TaskAccepted(id=task_id, status=status)


@router.get("")
async def list_tasks(
    client: Client,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_POSITION),
) -> dict[str, Any]:
    return {
        "tasks": [
            {
                "id": t["id"],
                "status": t["status"],
                "description": t["request"]["description"][:200],
                "createdAt": t["created_at"],
            }
            for t in client.store.tasks(limit, offset)
        ]
    }


@router.get("/{task_id}")
async def get_task(task_id: str, client: Client) -> dict[str, Any]:
    return task_view(client.task(task_id))


@router.get("/{task_id}/events")
async def task_events(
    task_id: str,
    request: Request,
    client: Client,
    after: int = Query(0, ge=0, le=MAX_POSITION),
) -> EventSourceResponse:
    client.require_task(task_id)
    last = request.headers.get("last-event-id")
    start = int(last) if last and last.isdigit() and len(last) < 16 else after

    async def stream() -> AsyncIterator[bytes]:
        """The events published together go out in one write."""
        async for batch in client.events.stream_batches(task_id, start, lambda: client.is_done(task_id)):
            yield b"".join(
                ServerSentEvent(jsonio.dumps_text(e), event=e["kind"], id=str(e["seq"])).encode() for e in batch
            )

    return EventSourceResponse(stream(), ping=15, send_timeout=30)


class EventsQuery(BaseModel):
    after: int = Field(0, ge=0, le=MAX_POSITION)


def serve_directly(app: ServiceApp, keys: ApiKeys) -> None:
    """Submitting a task, following it and reading it, the hot paths, as direct routes (ahead of FastAPI's
    middleware and dependency resolution, a quarter of the client's time per task in a py-spy profile): the same
    endpoints as above, the request parsed and refused as FastAPI would."""

    async def submit_directly(request: Request) -> Response:
        submission = TaskSubmission.model_validate_json(await read_bounded(request, MAX_BODY_BYTES))
        accepted = await submit(submission, request.app.state.service)
        return JSONResponse(accepted.model_dump(), status_code=202)

    async def events_directly(request: Request) -> Response:
        client: ClientService = request.app.state.service
        try:
            query = EventsQuery.model_validate(dict(request.query_params))
        except ValidationError as error:
            return invalid(error.errors(include_url=False), ("query",))
        return await task_events(request.path_params["task_id"], request, client, query.after)

    async def task_directly(request: Request) -> Response:
        found = await get_task(request.path_params["task_id"], request.app.state.service)
        return Response(jsonio.dumps(found), media_type="application/json")

    app.direct_route(router.prefix, guarded(keys, submit_directly), methods=("POST",))
    app.direct_route(router.prefix + "/{task_id}", guarded(keys, task_directly), methods=("GET",))
    app.direct_route(router.prefix + "/{task_id}/events", guarded(keys, events_directly), methods=("GET",))


@router.get("/{task_id}/ledger")
async def task_ledger(task_id: str, client: Client) -> dict[str, Any]:
    subtask_ids = [sub["id"] for sub in client.task(task_id)["subtasks"]]
    return {"entries": client.ledger.entries(subtask_ids=subtask_ids)}


@router.post("/{task_id}/cancel")
async def cancel(task_id: str, client: Client) -> dict[str, Any]:
    return {"id": task_id, "status": await client.cancel(task_id)}


@router.post("/{task_id}/feedback")
async def feedback(task_id: str, body: Feedback, client: Client) -> dict[str, Any]:
    """Grade a delivered subtask (`correct`, or a `grade` in [0, 1]); it moves the competence estimate of the agent
    that delivered it."""
    return client.feedback(task_id, body)


@router.post("/{task_id}/input", status_code=202)
async def answer(task_id: str, body: InputAnswer, client: Client) -> dict[str, Any]:
    if body.text is None and body.data is None:
        raise Invalid("an answer needs text or data")
    return {"id": task_id, "subtask": client.answer(task_id, body)}
