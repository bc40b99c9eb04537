"""A2A v1.0 (the current generation): the protobuf-JSON shapes of the canonical models, both ways."""

from __future__ import annotations

from typing import Any

from shared.a2a.dialects import invalid_params, validated
from shared.a2a.models import (
    Artifact,
    Message,
    Part,
    Task,
    TaskState,
    TaskStatus,
)

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


def part_from_v1(raw: Any) -> dict[str, Any]:
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


def message_from_v1(raw: dict[str, Any]) -> Message:
    parts = raw.get("parts")
    if not isinstance(parts, list):
        raise invalid_params("message.parts must be a list")
    role = _ROLE_FROM_V1.get(raw.get("role", ""))
    if role is None:
        raise invalid_params("message.role must be ROLE_USER or ROLE_AGENT")
    return validated(
        Message,
        {
            "role": role,
            "parts": [part_from_v1(p) for p in parts],
            "messageId": raw.get("messageId") or None,
            "contextId": raw.get("contextId") or None,
            "taskId": raw.get("taskId") or None,
            "metadata": raw.get("metadata"),
        },
    )


def _parts_from_v1(raw: dict[str, Any], where: str) -> list[dict[str, Any]]:
    parts = raw.get("parts")
    if not isinstance(parts, list):
        raise invalid_params(f"{where}.parts must be a list")
    return [part_from_v1(p) for p in parts]


def status_from_v1(raw: Any) -> TaskStatus:
    if not isinstance(raw, dict):
        raise invalid_params("a task status must be an object")
    message = raw.get("message")
    return validated(
        TaskStatus,
        {
            "state": state_from_v1(str(raw.get("state", ""))),
            "message": message_from_v1(message) if isinstance(message, dict) else None,
            **({"timestamp": raw["timestamp"]} if raw.get("timestamp") else {}),
        },
    )


def artifact_from_v1(raw: Any) -> Artifact:
    if not isinstance(raw, dict):
        raise invalid_params("an artifact must be an object")
    fields = {k: raw[k] for k in ("artifactId", "name", "description", "metadata") if raw.get(k) is not None}
    return validated(Artifact, {**fields, "parts": _parts_from_v1(raw, "artifact")})


def task_from_v1(raw: Any) -> Task:
    if not isinstance(raw, dict):
        raise invalid_params("a task must be an object")
    artifacts, history = raw.get("artifacts") or [], raw.get("history") or []
    if not isinstance(artifacts, list) or not isinstance(history, list):
        raise invalid_params("task.artifacts and task.history must be lists")
    return validated(
        Task,
        {
            "id": raw.get("id"),
            "contextId": raw.get("contextId") or "",
            "status": status_from_v1(raw.get("status")),
            "artifacts": [artifact_from_v1(a) for a in artifacts],
            "history": [message_from_v1(m) for m in history if isinstance(m, dict)],
            "metadata": raw.get("metadata") or {},
        },
    )


def part_to_v1(part: Part) -> dict[str, Any]:
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


def message_to_v1(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {
        "messageId": message.message_id,
        "role": _V1_ROLE[message.role],
        "parts": [part_to_v1(p) for p in message.parts],
    }
    for key, value in (("contextId", message.context_id), ("taskId", message.task_id)):
        if value:
            out[key] = value
    if message.metadata:
        out["metadata"] = message.metadata
    return out


def status_to_v1(status: TaskStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"state": _V1_STATE[status.state], "timestamp": status.timestamp}
    if status.message is not None:
        out["message"] = message_to_v1(status.message)
    return out


def artifact_to_v1(artifact: Artifact) -> dict[str, Any]:
    out: dict[str, Any] = {
        "artifactId": artifact.artifact_id,
        "parts": [part_to_v1(p) for p in artifact.parts],
    }
    for key, value in (("name", artifact.name), ("description", artifact.description)):
        if value:
            out[key] = value
    if artifact.metadata:
        out["metadata"] = artifact.metadata
    return out


def task_to_v1(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {"id": task.id, "contextId": task.context_id, "status": status_to_v1(task.status)}
    if task.artifacts:
        out["artifacts"] = [artifact_to_v1(a) for a in task.artifacts]
    if task.history:
        out["history"] = [message_to_v1(m) for m in task.history]
    if task.metadata:
        out["metadata"] = task.metadata
    return out
