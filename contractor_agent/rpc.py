"""JSON-RPC 2.0 for the three A2A generations, over one `TaskManager`.

`RpcHandler.handle` takes the raw request body and the caller (the tenant the service's authentication names, or
None) and returns either one JSON-RPC response (a dict) or a `StreamReply` whose events are JSON-RPC responses for
an SSE stream. It never raises: every failure is a JSON-RPC error object with the A2A code. Every method sees only
the caller's tasks (`TaskManager.get`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contractor_agent.tasks import Subscription, TaskManager, TaskRecord, until_settled
from shared.a2a.dialects import Dialect, check_version_header, invalid_params, optional_int, require_str
from shared.a2a.models import (
    A2AError,
    ErrorCode,
    JSONRPCError,
    JSONRPCRequest,
    SendRequest,
    StreamEvent,
    TaskState,
    TaskStatusUpdateEvent,
    rpc_error,
    rpc_result,
)
from shared.a2a.v1 import state_from_v1
from shared.a2a.wire import (
    parse_push_config,
    parse_send,
    render_event,
    render_push_config,
    render_send_result,
    render_task,
)
from shared.runtime import jsonio
from shared.security.net_policy import AddressRefused

log = logging.getLogger(__name__)

RequestId = str | int | None
Params = dict[str, Any]


@dataclass
class StreamReply:
    """A streaming answer: JSON-RPC responses to send as SSE `data:` lines; the stream closes after the last."""

    request_id: RequestId
    events: AsyncIterator[dict[str, Any]]


Caller = str | None
Unary = Callable[[Params, Dialect, Caller], Awaitable[Any]]
Streaming = Callable[[Params, Dialect, Caller, RequestId], Awaitable[StreamReply]]

MAX_PAGE_SIZE = 100


class RpcHandler:
    def __init__(self, manager: TaskManager) -> None:
        self.manager = manager
        legacy, v03, v10 = Dialect.LEGACY, Dialect.V0_3, Dialect.V1_0
        self._unary: dict[str, tuple[Unary, Dialect]] = {
            "tasks/send": (self._send, legacy),
            "tasks/get": (self._get, legacy),
            "tasks/cancel": (self._cancel, legacy),
            "tasks/pushNotification/set": (self._push_set, legacy),
            "tasks/pushNotification/get": (self._push_get, legacy),
            "message/send": (self._send, v03),
            "tasks/pushNotificationConfig/set": (self._push_set, v03),
            "tasks/pushNotificationConfig/get": (self._push_get, v03),
            "tasks/pushNotificationConfig/list": (self._push_list, v03),
            "tasks/pushNotificationConfig/delete": (self._push_delete, v03),
            "agent/getAuthenticatedExtendedCard": (self._extended_card, v03),
            "SendMessage": (self._send, v10),
            "GetTask": (self._get, v10),
            "ListTasks": (self._list, v10),
            "CancelTask": (self._cancel, v10),
            "CreateTaskPushNotificationConfig": (self._push_set, v10),
            "GetTaskPushNotificationConfig": (self._push_get, v10),
            "ListTaskPushNotificationConfigs": (self._push_list, v10),
            "DeleteTaskPushNotificationConfig": (self._push_delete, v10),
            "GetExtendedAgentCard": (self._extended_card, v10),
        }
        self._streaming: dict[str, tuple[Streaming, Dialect]] = {
            "tasks/sendSubscribe": (self._stream, legacy),
            "tasks/resubscribe": (self._resubscribe, legacy),
            "message/stream": (self._stream, v03),
            "SendStreamingMessage": (self._stream, v10),
            "SubscribeToTask": (self._resubscribe, v10),
        }

    @property
    def methods(self) -> list[str]:
        return sorted([*self._unary, *self._streaming])

    async def handle(
        self, body: bytes, version_header: str | None = None, caller: Caller = None
    ) -> dict[str, Any] | StreamReply:
        request_id: RequestId = None
        try:
            try:
                payload = jsonio.loads(body)
            except (ValueError, RecursionError) as error:
                raise A2AError(ErrorCode.PARSE_ERROR, f"parse error: {error}") from None
            if isinstance(payload, dict) and isinstance(payload.get("id"), str | int):
                request_id = payload["id"]
            request = self._validate_envelope(payload)
            check_version_header(version_header)
            params = request.params or {}
            if request.method in self._streaming:
                handler, dialect = self._streaming[request.method]
                return await handler(params, dialect, caller, request_id)
            if request.method not in self._unary:
                raise A2AError(ErrorCode.METHOD_NOT_FOUND, f"method {request.method!r} not found")
            unary, dialect = self._unary[request.method]
            result = await unary(params, dialect, caller)
            await self.manager.on_disk()  # what the answer says is durable before it is sent
            return rpc_result(request_id, result)
        except A2AError as error:
            return rpc_error(request_id, error.to_error())
        except Exception:
            log.exception("internal error on a JSON-RPC request")
            return rpc_error(request_id, JSONRPCError(code=ErrorCode.INTERNAL_ERROR, message="internal error"))

    @staticmethod
    def _validate_envelope(payload: Any) -> JSONRPCRequest:
        if isinstance(payload, list):
            raise A2AError(ErrorCode.INVALID_REQUEST, "invalid request: batch requests are not supported")
        if not isinstance(payload, dict):
            raise A2AError(ErrorCode.INVALID_REQUEST, "invalid request: the body must be a JSON-RPC object")
        params = payload.get("params")
        well_formed = isinstance(payload.get("method"), str) and payload.get("jsonrpc") == "2.0"
        if well_formed and params is not None and not isinstance(params, dict):
            raise A2AError(ErrorCode.INVALID_PARAMS, "invalid params: 'params' must be an object")
        try:
            return JSONRPCRequest.model_validate(payload)
        except ValidationError as error:
            fields = ", ".join(sorted({str(e["loc"][0]) for e in error.errors() if e["loc"]})) or "envelope"
            raise A2AError(ErrorCode.INVALID_REQUEST, f"invalid request: bad or missing {fields}") from None

    # ------------------------------------------------------------ tasks

    async def _parse_send(self, params: Params, dialect: Dialect) -> SendRequest:
        """The send's params; a push config it carries is checked as `_push_set` checks one."""
        request = parse_send(params, dialect)
        if request.push_config is not None:
            await self._check_push_url(request.push_config.url)
        return request

    async def _check_push_url(self, url: str) -> None:
        if self.manager.notifier is not None:
            try:
                await self.manager.notifier.check(url)
            except AddressRefused as refused:
                raise A2AError(ErrorCode.INVALID_PARAMS, f"push notification URL refused: {refused}") from None

    async def _send(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        request = await self._parse_send(params, dialect)
        record, subscription = self.manager.submit(request, dialect, caller, subscribe=request.blocking)
        if subscription is not None:
            await self.manager.wait_settled(record, subscription)
        return render_send_result(self.manager.snapshot(record, request.history_length), dialect)

    async def _get(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        record = self.manager.get(require_str(params, "id"), caller)
        return render_task(self.manager.snapshot(record, optional_int(params, "historyLength")), dialect)

    async def _cancel(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        record = await self.manager.cancel(require_str(params, "id"), caller)
        return render_task(self.manager.snapshot(record), dialect)

    async def _list(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        page_size = optional_int(params, "pageSize") or 50
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise invalid_params(f"'pageSize' must be between 1 and {MAX_PAGE_SIZE}")
        token = params.get("pageToken") or "0"
        if not isinstance(token, str) or not token.isdigit():
            raise invalid_params("'pageToken' is not a token this server issued")
        offset = int(token)
        state = state_from_v1(params["status"]) if params.get("status") else None
        context_id = params.get("contextId") or None
        records, total = self.manager.list(caller, context_id, state, offset, page_size)
        history_length = optional_int(params, "historyLength")
        tasks = []
        for record in records:
            task = self.manager.snapshot(record, history_length if history_length is not None else 0)
            if not params.get("includeArtifacts"):
                task = task.model_copy(update={"artifacts": []})
            tasks.append(render_task(task, dialect))
        next_offset = offset + len(records)
        return {
            "tasks": tasks,
            "nextPageToken": str(next_offset) if next_offset < total else "",
            "pageSize": page_size,
            "totalSize": total,
        }

    async def _extended_card(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        raise A2AError(ErrorCode.EXTENDED_CARD_NOT_CONFIGURED, "this agent has no authenticated extended card")

    # ------------------------------------------------------------ push notification configs

    @staticmethod
    def _task_id(params: Params, dialect: Dialect) -> str:
        if dialect is Dialect.V1_0:
            return require_str(params, "taskId")
        return require_str(params, "id", "taskId")

    async def _push_set(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        task_id = self._task_id(params, dialect)
        record = self.manager.get(task_id, caller)
        raw = params if dialect is Dialect.V1_0 else params.get("pushNotificationConfig")
        config = parse_push_config(raw, dialect)
        await self._check_push_url(config.url)
        config = self.manager.set_push_config(record, config)
        return render_push_config(task_id, config, dialect)

    async def _push_get(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        task_id = self._task_id(params, dialect)
        record = self.manager.get(task_id, caller)
        config_id = params.get("id") if dialect is Dialect.V1_0 else params.get("pushNotificationConfigId")
        config = self.manager.push_config(record, config_id or None)
        return render_push_config(task_id, config, dialect)

    async def _push_list(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        task_id = self._task_id(params, dialect)
        record = self.manager.get(task_id, caller)
        if self.manager.notifier is None:
            raise A2AError(ErrorCode.PUSH_NOT_SUPPORTED, "push notifications are not supported")
        configs = [render_push_config(task_id, c, dialect) for c in record.push_configs.values()]
        return {"configs": configs, "nextPageToken": ""} if dialect is Dialect.V1_0 else configs

    async def _push_delete(self, params: Params, dialect: Dialect, caller: Caller) -> Any:
        task_id = self._task_id(params, dialect)
        record = self.manager.get(task_id, caller)
        key = "id" if dialect is Dialect.V1_0 else "pushNotificationConfigId"
        self.manager.delete_push_config(record, require_str(params, key))
        return {} if dialect is Dialect.V1_0 else None

    # ------------------------------------------------------------ streams

    async def _stream(self, params: Params, dialect: Dialect, caller: Caller, request_id: RequestId) -> StreamReply:
        request = await self._parse_send(params, dialect)
        record, subscription = self.manager.submit(request, dialect, caller, subscribe=True)
        # a new task opens the stream as submitted (its state, not a later one that may not be on disk yet); a
        # follow-up opens with the task as it is when the stream starts (no longer waiting for input)
        new = dialect is not Dialect.LEGACY and record.state is TaskState.SUBMITTED
        opening = self.manager.snapshot(record) if new else None
        return StreamReply(request_id, self._events(record, subscription, dialect, request_id, opening))

    async def _resubscribe(
        self, params: Params, dialect: Dialect, caller: Caller, request_id: RequestId
    ) -> StreamReply:
        record, subscription = self.manager.resubscribe(require_str(params, "id"), caller)
        if dialect is Dialect.LEGACY and record.dialect is not Dialect.LEGACY:
            dialect = Dialect.V0_3  # `tasks/resubscribe` is both legacy and v0.3: answer as the task was created
        opening: StreamEvent = self.manager.snapshot(record)
        if dialect is Dialect.LEGACY:
            opening = self.manager.status_event(record)
        return StreamReply(request_id, self._events(record, subscription, dialect, request_id, opening))

    async def _events(
        self,
        record: TaskRecord,
        subscription: Subscription | None,
        dialect: Dialect,
        request_id: RequestId,
        opening: StreamEvent | None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The stream of one task. Generations after legacy open with the Task itself (`opening`, else as it is
        when the stream starts)."""
        try:
            if opening is None and dialect is not Dialect.LEGACY:
                opening = self.manager.snapshot(record)
            if opening is not None:
                yield rpc_result(request_id, render_event(opening, dialect))
            if subscription is None:
                return
            async for event in until_settled(subscription):
                if (
                    dialect is not Dialect.LEGACY
                    and isinstance(event, TaskStatusUpdateEvent)
                    and event.status.state is TaskState.SUBMITTED
                ):
                    continue
                yield rpc_result(request_id, render_event(event, dialect))
            if subscription.overflowed:
                error = A2AError(ErrorCode.INTERNAL_ERROR, "the stream fell behind; resubscribe to catch up")
                yield rpc_error(request_id, error.to_error())
        finally:
            self.manager.unsubscribe(record, subscription)
