"""A2A v0.3 and the legacy generation (0.1/0.2): they share `tasks/get`, `tasks/cancel` and `tasks/resubscribe`,
so they are rendered as one superset shape that carries the fields of both (each generation's parsers ignore
the other's fields). Kept apart from the current generation (`shared.a2a.v1`).
"""

from __future__ import annotations

from typing import Any

from shared.a2a.models import (
    Artifact,
    Message,
    Part,
    Task,
    TaskStatus,
)


def part_to_legacy(part: Part) -> dict[str, Any]:
    out = part.wire()
    out["type"] = part.kind
    if part.kind == "data" and not isinstance(part.data, dict):
        out["data"] = {"value": part.data}
    return out


def message_to_legacy(message: Message) -> dict[str, Any]:
    out = message.wire()
    out["kind"] = "message"
    out["parts"] = [part_to_legacy(p) for p in message.parts]
    return out


def status_to_legacy(status: TaskStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"state": status.state.value, "timestamp": status.timestamp}
    if status.message is not None:
        out["message"] = message_to_legacy(status.message)
    return out


def artifact_to_legacy(artifact: Artifact) -> dict[str, Any]:
    out = artifact.wire()
    out["parts"] = [part_to_legacy(p) for p in artifact.parts]
    return out


def task_to_legacy(task: Task) -> dict[str, Any]:
    return {
        "kind": "task",
        "id": task.id,
        "contextId": task.context_id,
        "sessionId": task.context_id,
        "status": status_to_legacy(task.status),
        "artifacts": [artifact_to_legacy(a) for a in task.artifacts],
        "history": [message_to_legacy(m) for m in task.history],
        "metadata": task.metadata,
    }
