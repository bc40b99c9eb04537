"""Reference for the contractor benchmark: an echo agent on the official a2a-sdk 1.3 server stack
(DefaultRequestHandlerV2, JSON-RPC routes with v0.3 compat), under uvicorn; tasks in its InMemoryTaskStore, or in
its DatabaseTaskStore on an SQLite file (a2a-sdk[sqlite]: SQLAlchemy over aiosqlite).

Run: python bench/a2a_sdk_echo_server.py PORT [SQLITE_PATH]
"""

from __future__ import annotations

import sys

import uvicorn
from a2a.helpers.proto_helpers import new_task
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events.event_queue_v2 import EventQueue
from a2a.server.request_handlers import DefaultRequestHandlerV2
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import DatabaseTaskStore, InMemoryTaskStore, TaskStore
from a2a.server.tasks.task_updater import TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentSkill, TaskState
from starlette.applications import Starlette


class EchoExecutor(AgentExecutor):
    """The same trivial work as our `echo` worker: the user's parts come back as one artifact."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        await event_queue.enqueue_event(new_task(context.task_id, context.context_id, TaskState.TASK_STATE_SUBMITTED))
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        await updater.add_artifact(list(context.message.parts), name="echo")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def build(port: int, store: TaskStore) -> Starlette:
    url = f"http://127.0.0.1:{port}/"
    card = AgentCard(
        name="a2a-sdk echo",
        description="echo agent on the official SDK",
        version="1.0.0",
        supported_interfaces=[AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="echo", tags=["echo"])],
    )
    handler = DefaultRequestHandlerV2(agent_executor=EchoExecutor(), task_store=store, agent_card=card)
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(handler, "/", enable_v0_3_compat=True)
    return Starlette(routes=routes)


def task_store(sqlite_path: str | None) -> TaskStore:
    if sqlite_path is None:
        return InMemoryTaskStore()
    from sqlalchemy.ext.asyncio import create_async_engine

    return DatabaseTaskStore(create_async_engine(f"sqlite+aiosqlite:///{sqlite_path}"))


if __name__ == "__main__":
    port = int(sys.argv[1])
    app = build(port, task_store(sys.argv[2] if len(sys.argv) > 2 else None))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
