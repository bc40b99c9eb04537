"""The three A2A wire generations: parse each into the canonical models of `shared.protocol`, render back.

- legacy: `tasks/send`, parts tagged `type`, task ids chosen by the client, `sessionId`;
- v0.3: `message/send`, objects tagged `kind`, server-made task ids, `contextId`;
- v1.0: `SendMessage`, protobuf-JSON (enum strings, untagged parts, `{task}`/`{statusUpdate}` stream wrappers).

Legacy and v0.3 share `tasks/get`, `tasks/cancel` and `tasks/resubscribe`, so they are rendered as one
superset shape that carries the fields of both (each generation's parsers ignore the other's fields).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from shared.protocol import (
    A2AError,
    Artifact,
    ErrorCode,
    Message,
    Part,
    PushAuthentication,
    PushNotificationConfig,
    SendRequest,
    StreamEvent,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)


class Dialect(StrEnum):
    LEGACY = "legacy"
    V0_3 = "0.3"
    V1_0 = "1.0"


SUPPORTED_VERSIONS = frozenset({"0.2", "0.3", "1.0"})


def check_version_header(value: str | None) -> None:
    """`A2A-Version` (v1.0): a missing header means 0.3; an unknown one is refused with -32009."""
    if value is None or not value.strip():
        return
    major_minor = ".".join(value.strip().split(".")[:2])
    if major_minor not in SUPPORTED_VERSIONS:
        raise A2AError(
            ErrorCode.VERSION_NOT_SUPPORTED,
            f"A2A-Version {value!r} is not supported; supported: {', '.join(sorted(SUPPORTED_VERSIONS))}",
        )


def invalid_params(error: ValidationError | str) -> A2AError:
    if isinstance(error, ValidationError):
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in error.errors()[:5])
        return A2AError(ErrorCode.INVALID_PARAMS, f"invalid params: {details}")
    return A2AError(ErrorCode.INVALID_PARAMS, f"invalid params: {error}")


def _validated(model: type, value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise invalid_params(error) from None


def _require_dict(params: Any, field: str) -> dict[str, Any]:
    value = params.get(field) if isinstance(params, dict) else None
    if not isinstance(value, dict):
        raise invalid_params(f"'{field}' must be an object")
    return value


def require_str(params: dict[str, Any], *names: str) -> str:
    for name in names:
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    raise invalid_params(f"'{names[0]}' is required and must be a non-empty string")


def optional_int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_params(f"'{name}' must be a non-negative integer")
    return value


# ================================================================ v1.0 shapes

_V1_STATE = {state: "TASK_STATE_" + state.value.upper().replace("-", "_") for state in TaskState}
_V1_STATE[TaskState.UNKNOWN] = "TASK_STATE_UNSPECIFIED"
_STATE_FROM_V1 = {wire: state for state, wire in _V1_STATE.items()}
_V1_ROLE = {"user": "ROLE_USER", "agent": "ROLE_AGENT"}
_ROLE_FROM_V1 = {"ROLE_USER": "user", "ROLE_AGENT": "agent", "user": "user", "agent": "agent"}


def v1_state(state: TaskState) -> str:
    return _V1_STATE[state]


def state_from_v1(value: str) -> TaskState:
    if value not in _STATE_FROM_V1:
        raise invalid_params(f"unknown task state {value!r}")
    return _STATE_FROM_V1[value]


def _part_from_v1(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid_params("each part must be an object")
    common = {"metadata": raw.get("metadata")}
    if "text" in raw:
        return {"kind": "text", "text": raw["text"], **common}
    if "data" in raw:
        return {"kind": "data", "data": raw["data"], **common}
    if "raw" in raw or "url" in raw:
        file = {"name": raw.get("filename"), "mimeType": raw.get("mediaType")}
        file["bytes" if "raw" in raw else "uri"] = raw.get("raw") or raw.get("url")
        return {"kind": "file", "file": file, **common}
    raise invalid_params("a part needs one of 'text', 'data', 'raw' or 'url'")


def _message_from_v1(raw: dict[str, Any]) -> Message:
    parts = raw.get("parts")
    if not isinstance(parts, list):
        raise invalid_params("message.parts must be a list")
    role = _ROLE_FROM_V1.get(raw.get("role", ""))
    if role is None:
        raise invalid_params("message.role must be ROLE_USER or ROLE_AGENT")
    return _validated(
        Message,
        {
            "role": role,
            "parts": [_part_from_v1(p) for p in parts],
            "messageId": raw.get("messageId") or None,
            "contextId": raw.get("contextId") or None,
            "taskId": raw.get("taskId") or None,
            "metadata": raw.get("metadata"),
        },
    )


def _part_to_v1(part: Part) -> dict[str, Any]:
    out: dict[str, Any]
    if part.kind == "text":
        out = {"text": part.text}
    elif part.kind == "data":
        out = {"data": part.data}
    else:
        assert part.file is not None
        out = {"raw": part.file.bytes} if part.file.bytes is not None else {"url": part.file.uri}
        out["mediaType"] = part.mime_type
        if part.file.name:
            out["filename"] = part.file.name
    if part.metadata:
        out["metadata"] = part.metadata
    return out


def _message_to_v1(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "messageId": message.message_id,
        "role": _V1_ROLE[message.role],
        "parts": [_part_to_v1(p) for p in message.parts],
    }
    for key, value in (("contextId", message.context_id), ("taskId", message.task_id)):
        if value:
            out[key] = value
    if message.metadata:
        out["metadata"] = message.metadata
    return out


def _status_to_v1(status: TaskStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"state": _V1_STATE[status.state], "timestamp": status.timestamp}
    if status.message is not None:
        out["message"] = _message_to_v1(status.message)
    return out


def _artifact_to_v1(artifact: Artifact) -> dict[str, Any]:
    out: dict[str, Any] = {
        "artifactId": artifact.artifact_id,
        "parts": [_part_to_v1(p) for p in artifact.parts],
    }
    for key, value in (("name", artifact.name), ("description", artifact.description)):
        if value:
            out[key] = value
    if artifact.metadata:
        out["metadata"] = artifact.metadata
    return out


def _task_to_v1(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {"id": task.id, "contextId": task.context_id, "status": _status_to_v1(task.status)}
    if task.artifacts:
        out["artifacts"] = [_artifact_to_v1(a) for a in task.artifacts]
    if task.history:
        out["history"] = [_message_to_v1(m) for m in task.history]
    if task.metadata:
        out["metadata"] = task.metadata
    return out


# ================================================================ legacy + v0.3 superset shapes


def _part_to_legacy(part: Part) -> dict[str, Any]:
    out = part.wire()
    out["type"] = part.kind
    if part.kind == "data" and not isinstance(part.data, dict):
        out["data"] = {"value": part.data}
    return out


def _message_to_legacy(message: Message) -> dict[str, Any]:
    out = message.wire()
    out["kind"] = "message"
    out["parts"] = [_part_to_legacy(p) for p in message.parts]
    return out


def _status_to_legacy(status: TaskStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"state": status.state.value, "timestamp": status.timestamp}
    if status.message is not None:
        out["message"] = _message_to_legacy(status.message)
    return out


def _artifact_to_legacy(artifact: Artifact) -> dict[str, Any]:
    out = artifact.wire()
    out["parts"] = [_part_to_legacy(p) for p in artifact.parts]
    return out


def _task_to_legacy(task: Task) -> dict[str, Any]:
    return {
        "kind": "task",
        "id": task.id,
        "contextId": task.context_id,
        "sessionId": task.context_id,
        "status": _status_to_legacy(task.status),
        "artifacts": [_artifact_to_legacy(a) for a in task.artifacts],
        "history": [_message_to_legacy(m) for m in task.history],
        "metadata": task.metadata,
    }


# ================================================================ public: render


def render_task(task: Task, dialect: Dialect) -> dict[str, Any]:
    return _task_to_v1(task) if dialect is Dialect.V1_0 else _task_to_legacy(task)


def render_send_result(task: Task, dialect: Dialect) -> dict[str, Any]:
    """The result of `tasks/send` / `message/send` (a Task) or `SendMessage` ({task})."""
    return {"task": _task_to_v1(task)} if dialect is Dialect.V1_0 else _task_to_legacy(task)


def render_event(event: StreamEvent, dialect: Dialect) -> dict[str, Any]:
    """One stream event as the `result` of a JSON-RPC response inside an SSE `data:` line."""
    if isinstance(event, Task):
        return {"task": _task_to_v1(event)} if dialect is Dialect.V1_0 else _task_to_legacy(event)
    if isinstance(event, TaskStatusUpdateEvent):
        if dialect is Dialect.V1_0:
            body = {
                "taskId": event.task_id,
                "contextId": event.context_id,
                "status": _status_to_v1(event.status),
            }
            if event.metadata:
                body["metadata"] = event.metadata
            return {"statusUpdate": body}
        return {
            "kind": "status-update",
            "id": event.task_id,
            "taskId": event.task_id,
            "contextId": event.context_id,
            "status": _status_to_legacy(event.status),
            "final": event.final,
            "metadata": event.metadata or {},
        }
    assert isinstance(event, TaskArtifactUpdateEvent)
    if dialect is Dialect.V1_0:
        body = {
            "taskId": event.task_id,
            "contextId": event.context_id,
            "artifact": _artifact_to_v1(event.artifact),
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
        "artifact": _artifact_to_legacy(event.artifact),
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
    return _validated(PushNotificationConfig, value)


def parse_send(params: dict[str, Any], dialect: Dialect) -> SendRequest:
    """Parse the params of `tasks/send[Subscribe]`, `message/send|stream` or `Send[Streaming]Message`."""
    raw_message = _require_dict(params, "message")
    if dialect is Dialect.LEGACY:
        message = _validated(Message, raw_message)
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
        message = _message_from_v1(raw_message)
        push = configuration.get("taskPushNotificationConfig")
        blocking = not configuration.get("returnImmediately", False)
    else:
        message = _validated(Message, raw_message)
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
