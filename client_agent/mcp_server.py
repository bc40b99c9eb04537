"""The exchange as an MCP server (the official `mcp` SDK): any MCP host (an IDE, a desktop assistant, an agent
framework) gets work done through the market with four tools: `submit_task`, `get_task`, `list_market` and
`register_contractor`.

Served two ways over the same tools: Streamable HTTP at the client service's `/mcp` (`client_agent.api.mcp`: the
tools call the service in-process), and stdio by `coalesce mcp --client URL` (the tools call a running client
service's REST API, `RestBackend`). A refused call comes back as a tool error with the service's message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ValidationError

from client_agent.errors import ClientError
from client_agent.models import ContractorRegistration, TaskSubmission
from client_agent.state import TERMINAL
from coalesce.client import AsyncExchange, ExchangeError

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
MAX_WAIT_S = 300.0
POLL_S = 0.2


class Backend(Protocol):
    """What the tools need of the exchange: its REST API's views, as plain JSON."""

    async def submit(self, task: TaskSubmission) -> str: ...

    async def task(self, task_id: str) -> dict[str, Any]: ...

    async def market(self) -> dict[str, Any]: ...

    async def register(self, registration: ContractorRegistration) -> dict[str, Any]: ...


class RestBackend:
    """A client service elsewhere, through its REST API (`coalesce.client`)."""

    def __init__(self, exchange: AsyncExchange) -> None:
        self.exchange = exchange

    async def submit(self, task: TaskSubmission) -> str:
        return (await self.exchange.submit(task)).id

    async def task(self, task_id: str) -> dict[str, Any]:
        return (await self.exchange.get(task_id)).model_dump(by_alias=True)

    async def market(self) -> dict[str, Any]:
        return await self.exchange.market()

    async def register(self, registration: ContractorRegistration) -> dict[str, Any]:
        return (await self.exchange.register(registration)).model_dump()


def summary(task: dict[str, Any]) -> dict[str, Any]:
    """A task as a model reads it best: status, per subtask the answer, the decision, the check and the cost."""
    subtasks = []
    for sub in task["subtasks"]:
        parts = [p for a in sub.get("artifacts") or [] for p in a.get("parts", [])]
        decision = sub.get("decision") or {}
        subtasks.append(
            {
                "id": sub["id"],
                "skill": sub.get("skill"),
                "status": sub["status"],
                "answer": [p.get("text", p.get("data")) for p in parts],
                "decision": {k: decision.get(k) for k in ("action", "contractor", "strategy", "reason")},
                "verified": (sub.get("verification") or {}).get("passed"),
                "costUsd": (sub.get("cost") or {}).get("actualUsd"),
                "inputRequired": sub.get("inputRequired"),
            }
        )
    return {"id": task["id"], "status": task["status"], "cost": task.get("cost"), "subtasks": subtasks}


def build_server(backend: Backend) -> MCPServer:
    server = MCPServer(
        name="COALESCE exchange",
        instructions="Delegate work to a labour exchange of agents: submit_task, then get_task until it is done.",
    )

    async def guarded(call: Awaitable[T]) -> T:
        try:
            return await call
        except (ClientError, ExchangeError) as error:
            raise ToolError(error.message) from None

    @server.tool()
    async def submit_task(
        description: str,
        subtasks: list[dict[str, Any]] | None = None,
        data: dict[str, Any] | None = None,
        budget_usd: float | None = None,
        sensitivity: str = "internal",
        wait_s: float = 0.0,
    ) -> dict[str, Any]:
        """Submit a task to the exchange: a description in words (decomposed by the exchange), or explicit
        `subtasks` (each {skill, description, input_text?, input_data?, verification?}); `data` for the planner to
        hand to subtasks. With `wait_s` > 0, wait up to that long (at most 300 s) for the result."""
        arguments = {"description": description, "subtasks": subtasks, "data": data, "budget_usd": budget_usd}
        task = _valid(TaskSubmission, arguments | {"sensitivity": sensitivity})
        task_id = await guarded(backend.submit(task))
        deadline = time.monotonic() + min(max(wait_s, 0.0), MAX_WAIT_S)
        while (view := await guarded(backend.task(task_id)))["status"] not in TERMINAL:
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_S)
        return summary(view)

    @server.tool()
    async def get_task(task_id: str) -> dict[str, Any]:
        """A task's status and, per subtask, its answer, the decision (done locally or by which contractor, and
        why), whether the check passed, and what it cost."""
        return summary(await guarded(backend.task(task_id)))

    @server.tool()
    async def list_market() -> dict[str, Any]:
        """The market: every contractor with its skills, live quote, load and competence per skill; the exchange's
        own worker as `local`."""
        return await guarded(backend.market())

    @server.tool()
    async def register_contractor(card_url: str, price_usd: float | None = None) -> dict[str, Any]:
        """Register an A2A agent by its card URL; `price_usd` (per task) for an agent whose card publishes no
        price."""
        registration = _valid(ContractorRegistration, {"card_url": card_url, "price_usd": price_usd})
        return await guarded(backend.register(registration))

    return server


def _valid(model: type[M], arguments: dict[str, Any]) -> M:
    """The tool's arguments as the service's model; a tool error saying what is wrong otherwise."""
    try:
        return model.model_validate(arguments)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in error.errors()[:5])
        raise ToolError(f"invalid arguments: {problems}") from None
