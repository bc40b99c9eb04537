"""The A2A client the client agent hires over, in the wire generation the contractor's card declares
(`shared.a2a.cards.hiring_endpoint`):

- v1.0: `SendMessage`, `SendStreamingMessage`, `GetTask`, `CancelTask`, `SubscribeToTask` (header `A2A-Version`);
- v0.3: `message/send`, `message/stream`, `tasks/get`, `tasks/cancel`, `tasks/resubscribe`;
- legacy: `tasks/send`, `tasks/sendSubscribe`, `tasks/get`, `tasks/cancel`, `tasks/resubscribe`.

Replies are parsed into the canonical models of `shared.a2a.models`. A message that opens a task carries no task
id; the agent names the task (legacy, where the client names it: the opening message's id is the task's id). An
agent may answer with a direct Message instead of a Task: `send` returns it and `stream` yields it last. Every
call has a timeout; every stream a bound on events; a reply that is not valid A2A raises A2AError
INVALID_AGENT_RESPONSE."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import ValidationError

from shared.a2a.cards import Endpoint
from shared.a2a.compat.v0_3 import message_to_legacy
from shared.a2a.dialects import Dialect
from shared.a2a.models import (
    A2AError,
    Artifact,
    ErrorCode,
    Message,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    new_id,
)
from shared.a2a.v1 import artifact_from_v1, message_from_v1, message_to_v1, status_from_v1, task_from_v1
from shared.runtime import jsonio

MAX_EVENTS = 10_000
DRAIN_S = 0.25  # how long the end of a stream is waited for after its last event
MAX_TRAILING_LINES = 100  # and how many lines (keep-alive comments) may come before it

Reply = Task | Message  # what a send answers
Event = Task | Message | TaskStatusUpdateEvent | TaskArtifactUpdateEvent  # what a stream yields

_METHODS = {  # send, stream, get, cancel
    Dialect.V1_0: ("SendMessage", "SendStreamingMessage", "GetTask", "CancelTask"),
    Dialect.V0_3: ("message/send", "message/stream", "tasks/get", "tasks/cancel"),
    Dialect.LEGACY: ("tasks/send", "tasks/sendSubscribe", "tasks/get", "tasks/cancel"),
}


def as_task(reply: Reply) -> Task:
    """A reply as a task: a direct answer stands for a completed task whose one artifact holds its parts."""
    if isinstance(reply, Task):
        return reply
    return Task(
        id=reply.task_id or reply.message_id,
        context_id=reply.context_id or "",
        status=TaskStatus(state=TaskState.COMPLETED),
        artifacts=[Artifact(name="answer", parts=reply.parts)],
    )


def _not_a2a(what: str) -> A2AError:
    return A2AError(ErrorCode.INVALID_AGENT_RESPONSE, f"the agent's reply is not valid A2A: {what}"[:300])


async def _drain(lines: AsyncIterator[str]) -> None:
    """What follows a stream's last event (its end), read so that the connection goes back to the pool. A server
    that keeps the stream open past its last event loses the connection instead (it is closed after `DRAIN_S`)."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(DRAIN_S):
            for _ in range(MAX_TRAILING_LINES):
                if await anext(lines, None) is None:
                    return


def _ends_stream(event: Event) -> bool:
    """The last event of a send's stream: a direct answer, a final or interrupted state (v1.0 has no `final`)."""
    if isinstance(event, Message):
        return True
    if isinstance(event, TaskArtifactUpdateEvent):
        return False
    state = event.status.state
    return state.terminal or state.interrupted or (isinstance(event, TaskStatusUpdateEvent) and event.final)


class A2AClient:
    def __init__(
        self,
        endpoint: Endpoint,
        http: httpx.AsyncClient | None = None,
        timeout_s: float = 60.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.dialect = endpoint.dialect
        self.headers = {
            "Content-Type": "application/json",
            **(headers or {}),
            **({"A2A-Version": "1.0"} if self.dialect is Dialect.V1_0 else {}),
        }
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

    # ------------------------------------------------------------ calls

    def _fall_back(self, error: A2AError) -> bool:
        """A card that names no protocol version may be v0.2's, which speaks `message/send`: when `tasks/send` is
        not a method there, this client speaks v0.3 from then on (and says so: True)."""
        if self.dialect is not Dialect.LEGACY or error.code != ErrorCode.METHOD_NOT_FOUND:
            return False
        self.dialect = Dialect.V0_3
        return True

    async def send(self, message: Message, skill: str | None = None, metadata: dict[str, Any] | None = None) -> Reply:
        """Send `message` (a new task when it has no task id, else a follow-up) and wait for the reply."""
        try:
            result = await self._call(_METHODS[self.dialect][0], self._send_params(message, skill, metadata))
        except A2AError as error:
            if not self._fall_back(error):
                raise
            result = await self._call(_METHODS[self.dialect][0], self._send_params(message, skill, metadata))
        reply = self._event(result)
        if not isinstance(reply, Task | Message):
            raise _not_a2a("a send must answer with a task or a message")
        return reply

    async def stream(
        self, message: Message, skill: str | None = None, metadata: dict[str, Any] | None = None
    ) -> AsyncIterator[Event]:
        """Send `message` and yield the task's events until its final or interrupted state, or a direct answer."""
        try:
            async for event in self._stream(message, skill, metadata):
                yield event
        except A2AError as error:
            if not self._fall_back(error):
                raise
            async for event in self._stream(message, skill, metadata):
                yield event

    async def _stream(
        self, message: Message, skill: str | None, metadata: dict[str, Any] | None
    ) -> AsyncIterator[Event]:
        body = self._body(_METHODS[self.dialect][1], self._send_params(message, skill, metadata))
        async with self.http.stream(
            "POST", self.endpoint.url, content=jsonio.dumps(body), timeout=self.timeout_s, headers=self.headers
        ) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                self._result(self._json(await response.aread()))
                raise _not_a2a("expected an event stream")
            count = 0
            lines = response.aiter_lines()
            async for line in lines:
                if not line.startswith("data:"):
                    continue
                count += 1
                if count > MAX_EVENTS:
                    raise _not_a2a("too many stream events")
                event = self._event(self._result(self._json(line[5:])))
                yield event
                if _ends_stream(event):
                    await _drain(lines)
                    return

    async def get(self, task_id: str, history_length: int | None = None) -> Task:
        params: dict[str, Any] = {"id": task_id}
        if history_length is not None:
            params["historyLength"] = history_length
        return self._task(await self._call(_METHODS[self.dialect][2], params))

    async def cancel(self, task_id: str) -> Task:
        return self._task(await self._call(_METHODS[self.dialect][3], {"id": task_id}))

    # ------------------------------------------------------------ the wire

    def _send_params(self, message: Message, skill: str | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
        meta = {**(metadata or {}), **({"skill": skill} if skill else {})}
        if self.dialect is Dialect.LEGACY:
            return {
                "id": message.task_id or message.message_id,
                "sessionId": message.context_id,
                "message": message_to_legacy(message),
                "metadata": meta,
            }
        if self.dialect is Dialect.V1_0:
            return {"message": message_to_v1(message), "metadata": meta}
        return {"message": message_to_legacy(message), "configuration": {"blocking": True}, "metadata": meta}

    @staticmethod
    def _body(method: str, params: dict[str, Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": new_id(), "method": method, "params": params}

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        response = await self.http.post(
            self.endpoint.url,
            content=jsonio.dumps(self._body(method, params)),
            timeout=self.timeout_s,
            headers=self.headers,
        )
        return self._result(self._json(response.content))

    @staticmethod
    def _json(raw: bytes | str) -> Any:
        try:
            return jsonio.loads(raw)
        except ValueError:
            raise _not_a2a("not JSON") from None

    @staticmethod
    def _result(reply: Any) -> Any:
        if not isinstance(reply, dict):
            raise _not_a2a("not a JSON-RPC object")
        if "error" in reply:
            error = reply["error"] if isinstance(reply["error"], dict) else {}
            code = error.get("code")
            codes = {c.value: c for c in ErrorCode}
            kind = codes.get(code, ErrorCode.INVALID_AGENT_RESPONSE) if isinstance(code, int) else None
            kind = kind or ErrorCode.INVALID_AGENT_RESPONSE
            raise A2AError(kind, str(error.get("message", "error")), error.get("data"))
        return reply.get("result")

    def _task(self, result: Any) -> Task:
        event = self._event(result)
        if not isinstance(event, Task):
            raise _not_a2a("expected a task")
        return event

    def _event(self, result: Any) -> Event:
        """One result (of a send, a get or a stream event) in canonical form."""
        if not isinstance(result, dict):
            raise _not_a2a("the result must be an object")
        try:
            return self._event_v1(result) if self.dialect is Dialect.V1_0 else self._event_v0(result)
        except (ValidationError, A2AError, ValueError, TypeError) as error:
            raise _not_a2a(str(error)) from None

    @staticmethod
    def _event_v1(result: dict[str, Any]) -> Event:
        if "task" in result:
            return task_from_v1(result["task"])
        if "message" in result:
            return message_from_v1(result["message"])
        for key in ("statusUpdate", "artifactUpdate"):
            if isinstance(result.get(key), dict):
                body = result[key]
                ids = {
                    "taskId": body.get("taskId"),
                    "contextId": body.get("contextId") or "",
                    "metadata": body.get("metadata"),
                }
                if key == "statusUpdate":
                    status = status_from_v1(body.get("status"))
                    return TaskStatusUpdateEvent.model_validate({**ids, "status": status, "final": False})
                artifact = artifact_from_v1(body.get("artifact"))
                chunks = {"append": body.get("append"), "lastChunk": body.get("lastChunk")}
                return TaskArtifactUpdateEvent.model_validate({**ids, **chunks, "artifact": artifact})
        if "id" in result and "status" in result:  # GetTask and CancelTask answer with the bare task
            return task_from_v1(result)
        raise ValueError("expected one of task, message, statusUpdate, artifactUpdate")

    @staticmethod
    def _event_v0(result: dict[str, Any]) -> Event:
        """v0.3 objects say their `kind`; legacy ones are told apart by their fields."""
        kind = result.get("kind")
        if kind is None:
            is_event = "artifact" in result or "final" in result
            kind = "message" if "role" in result and "status" not in result else None if is_event else "task"
        if kind == "message":
            return Message.model_validate(result)
        context_id = result.get("contextId") or result.get("sessionId") or ""
        if kind == "task":
            return Task.model_validate({**result, "contextId": context_id})
        ids = {"taskId": result.get("taskId", result.get("id")), "contextId": context_id}
        if kind == "artifact-update" or "artifact" in result:
            return TaskArtifactUpdateEvent.model_validate({**result, **ids})
        return TaskStatusUpdateEvent.model_validate({**result, **ids})
