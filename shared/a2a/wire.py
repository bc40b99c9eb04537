"""Parse each A2A wire generation into the canonical models of `shared.a2a.models`, and render them back."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.a2a.compat.v0_3 import artifact_to_legacy, status_to_legacy, task_to_legacy
from shared.a2a.dialects import Dialect, invalid_params, optional_int, require_dict, require_str, validated
from shared.a2a.models import (
    Message,
    PushAuthentication,
    PushNotificationConfig,
    SendRequest,
    StreamEvent,
    Task,
    TaskArtifactUpdateEvent,
    TaskStatusUpdateEvent,
)
from shared.a2a.v1 import artifact_to_v1, message_from_v1, status_to_v1, task_to_v1


def render_task(task: Task, dialect: Dialect) -> dict[str, Any]:
    return task_to_v1(task) if dialect is Dialect.V1_0 else task_to_legacy(task)


def render_send_result(task: Task, dialect: Dialect) -> dict[str, Any]:
    """The result of `tasks/send` / `message/send` (a Task) or `SendMessage` ({task})."""
    return {"task": task_to_v1(task)} if dialect is Dialect.V1_0 else task_to_legacy(task)


def render_event(event: StreamEvent, dialect: Dialect) -> dict[str, Any]:
    """One stream event as the `result` of a JSON-RPC response inside an SSE `data:` line."""
    if isinstance(event, Task):
        return {"task": task_to_v1(event)} if dialect is Dialect.V1_0 else task_to_legacy(event)
    if isinstance(event, TaskStatusUpdateEvent):
        if dialect is Dialect.V1_0:
            status_body: dict[str, Any] = {
                "taskId": event.task_id,
                "contextId": event.context_id,
                "status": status_to_v1(event.status),
            }
            if event.metadata:
                status_body["metadata"] = event.metadata
            return {"statusUpdate": status_body}
        return {
            "kind": "status-update",
            "id": event.task_id,
            "taskId": event.task_id,
            "contextId": event.context_id,
            "status": status_to_legacy(event.status),
            "final": event.final,
            "metadata": event.metadata or {},
        }
    assert isinstance(event, TaskArtifactUpdateEvent)
    if dialect is Dialect.V1_0:
        body: dict[str, Any] = {
            "taskId": event.task_id,
            "contextId": event.context_id,
            "artifact": artifact_to_v1(event.artifact),
            "append": bool(event.append),
            "lastChunk": bool(event.last_chunk),
        }
        if event.metadata:
            body["metadata"] = event.metadata
        return {"artifactUpdate": body}
    return {
        "kind": "artifact-update",
        "id": event.task_id,
        "taskId": event.task_id,
        "contextId": event.context_id,
        "artifact": artifact_to_legacy(event.artifact),
        "append": bool(event.append),
        "lastChunk": bool(event.last_chunk),
        "metadata": event.metadata or {},
    }


def render_push_config(task_id: str, config: PushNotificationConfig, dialect: Dialect) -> dict[str, Any]:
    if dialect is Dialect.V1_0:
        out: dict[str, Any] = {"taskId": task_id, "id": config.id, "url": config.url}
        if config.token:
            out["token"] = config.token
        if config.authentication:
            schemes = config.authentication.schemes
            out["authentication"] = {"scheme": schemes[0] if schemes else "Bearer"}
            if config.authentication.credentials:
                out["authentication"]["credentials"] = config.authentication.credentials
        return out
    return {"id": task_id, "taskId": task_id, "pushNotificationConfig": config.wire()}


# ================================================================ public: parse


def parse_push_config(raw: Any, dialect: Dialect) -> PushNotificationConfig:
    if not isinstance(raw, dict):
        raise invalid_params("the push notification config must be an object")
    value = dict(raw)
    auth = value.get("authentication")
    if dialect is Dialect.V1_0 and isinstance(auth, dict) and "scheme" in auth:
        value["authentication"] = PushAuthentication(
            schemes=[auth["scheme"]], credentials=auth.get("credentials")
        ).wire()
    if not value.get("id"):
        value.pop("id", None)
    return validated(PushNotificationConfig, value)


def parse_send(params: dict[str, Any], dialect: Dialect) -> SendRequest:
    """Parse the params of `tasks/send[Subscribe]`, `message/send|stream` or `Send[Streaming]Message`."""
    raw_message = require_dict(params, "message")
    if dialect is Dialect.LEGACY:
        message = validated(Message, raw_message)
        task_id = require_str(params, "id")
        push = params.get("pushNotification")
        return SendRequest(
            message=message,
            task_id=task_id,
            context_id=params.get("sessionId") or None,
            accepted_output_modes=params.get("acceptedOutputModes"),
            push_config=parse_push_config(push, dialect) if push else None,
            history_length=optional_int(params, "historyLength"),
            blocking=True,
            metadata=params.get("metadata"),
            client_chooses_id=True,
        )
    configuration = params.get("configuration") or {}
    if not isinstance(configuration, dict):
        raise invalid_params("'configuration' must be an object")
    if dialect is Dialect.V1_0:
        message = message_from_v1(raw_message)
        push = configuration.get("taskPushNotificationConfig")
        blocking = not configuration.get("returnImmediately", False)
    else:
        message = validated(Message, raw_message)
        push = configuration.get("pushNotificationConfig")
        blocking = configuration.get("blocking", True) is not False
    try:
        return SendRequest(
            message=message,
            task_id=message.task_id,
            context_id=message.context_id,
            accepted_output_modes=configuration.get("acceptedOutputModes") or None,
            push_config=parse_push_config(push, dialect) if push else None,
            history_length=optional_int(configuration, "historyLength"),
            blocking=blocking,
            metadata=params.get("metadata"),
        )
    except ValidationError as error:
        raise invalid_params(error) from None
