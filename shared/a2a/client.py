"""A small A2A client, the transport the client agent hires over: `tasks/sendSubscribe` with SSE, `tasks/send`,
`tasks/get`, `tasks/cancel`. Every call has a timeout; every stream has a bound on events. (Cards are fetched,
bounded and validated by `client_agent.registry.fetch_card`.)"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from shared.a2a.models import A2AError, ErrorCode, Message, Task, TaskArtifactUpdateEvent, TaskStatusUpdateEvent, new_id

MAX_EVENTS = 10_000


class A2AClient:
    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.headers = headers or {}
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=timeout_s)
        self.timeout_s = timeout_s

    async def close(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def __aenter__(self) -> A2AClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        body = {"jsonrpc": "2.0", "id": new_id(), "method": method, "params": params}
        response = await self.http.post(self.base_url, json=body, timeout=self.timeout_s, headers=self.headers)
        return self._result(response.json())

    @staticmethod
    def _result(reply: Any) -> Any:
        if not isinstance(reply, dict):
            raise A2AError(ErrorCode.INVALID_AGENT_RESPONSE, "the agent's reply is not a JSON-RPC object")
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            code = error.get("code")
            kind = ErrorCode(code) if isinstance(code, int) and code in {c.value for c in ErrorCode} else None
            kind = kind or ErrorCode.INVALID_AGENT_RESPONSE
            raise A2AError(kind, str(error.get("message", "error")), error.get("data"))
        return reply.get("result")

    @staticmethod
    def send_params(task_id: str, message: Message, skill: str | None, metadata: dict[str, Any] | None) -> dict:
        return {
            "id": task_id,
            "sessionId": message.context_id,
            "message": message.wire(),
            "metadata": {**(metadata or {}), **({"skill": skill} if skill else {})},
        }

    async def send(
        self, task_id: str, message: Message, skill: str | None = None, metadata: dict[str, Any] | None = None
    ) -> Task:
        result = await self._call("tasks/send", self.send_params(task_id, message, skill, metadata))
        return Task.model_validate(result)

    async def stream(
        self, task_id: str, message: Message, skill: str | None = None, metadata: dict[str, Any] | None = None
    ) -> AsyncIterator[TaskStatusUpdateEvent | TaskArtifactUpdateEvent]:
        """`tasks/sendSubscribe`: the task's events until the final one."""
        body = {
            "jsonrpc": "2.0",
            "id": new_id(),
            "method": "tasks/sendSubscribe",
            "params": self.send_params(task_id, message, skill, metadata),
        }
        async with self.http.stream(
            "POST", self.base_url, json=body, timeout=self.timeout_s, headers=self.headers
        ) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                self._result(json.loads(await response.aread()))
                raise A2AError(ErrorCode.INVALID_AGENT_RESPONSE, "expected an event stream")
            count = 0
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                count += 1
                if count > MAX_EVENTS:
                    raise A2AError(ErrorCode.INVALID_AGENT_RESPONSE, "too many stream events")
                result = self._result(json.loads(line[5:]))
                result = {**result, "taskId": result.get("taskId", result.get("id"))}
                if "artifact" in result:
                    yield TaskArtifactUpdateEvent.model_validate(result)
                    continue
                event = TaskStatusUpdateEvent.model_validate(result)
                yield event
                if event.final:
                    return

    async def get(self, task_id: str, history_length: int | None = None) -> Task:
        params: dict[str, Any] = {"id": task_id}
        if history_length is not None:
            params["historyLength"] = history_length
        return Task.model_validate(await self._call("tasks/get", params))

    async def cancel(self, task_id: str) -> Task:
        return Task.model_validate(await self._call("tasks/cancel", {"id": task_id}))
