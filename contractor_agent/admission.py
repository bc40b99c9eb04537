"""What a contractor takes on: bounded capacity (so many running, so many waiting, over that `-32050` at once),
content types a skill takes and makes, and which follow-up messages continue a task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from shared.a2a.models import A2AError, AgentCard, AgentSkill, ErrorCode, Message, SendRequest, Task, TaskState


@dataclass
class Limits:
    max_concurrent: int = 4
    max_queued: int = 16
    max_tasks_kept: int = 10_000
    max_push_configs_per_task: int = 8
    worker_timeout_s: float = 300.0
    blocking_wait_s: float = 300.0
    subscriber_buffer: int = 256


class Capacity:
    """Counts running and waiting tasks; `slot()` holds one of `max_concurrent` places while work runs."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.running = 0
        self.waiting = 0
        self._semaphore = asyncio.Semaphore(limits.max_concurrent)

    def load(self, tasks_kept: int) -> dict[str, Any]:
        return {
            "running": self.running,
            "queued": self.waiting,
            "maxConcurrent": self.limits.max_concurrent,
            "maxQueued": self.limits.max_queued,
            "tasksKept": tasks_kept,
        }

    def admit(self, tasks_kept: int) -> None:
        """Raises OVER_CAPACITY when every place, running and queued, is taken."""
        limits = self.limits
        if self.running + self.waiting >= limits.max_concurrent + limits.max_queued:
            raise A2AError(
                ErrorCode.OVER_CAPACITY,
                f"over capacity: {self.running} running and {self.waiting} queued",
                data={"retryAfterSeconds": 1.0, "load": self.load(tasks_kept)},
            )

    async def run(self, work: Any) -> None:
        """Wait for a place (counted as waiting), then run `work()` (counted as running). The caller counted the
        task as waiting when it queued it."""
        started = False
        try:
            async with self._semaphore:
                started = True
                self.waiting -= 1
                self.running += 1
                try:
                    await work()
                finally:
                    self.running -= 1
        finally:
            if not started:
                self.waiting -= 1


def _mode_matches(mode: str, accepted: str) -> bool:
    if accepted in ("*/*", "*", mode):
        return True
    return accepted.endswith("/*") and mode.split("/")[0] == accepted[:-2]


def check_content_types(card: AgentCard, skill: AgentSkill, message: Message, accepted: list[str] | None) -> None:
    """The message's parts are of types the skill takes, and the skill makes a type the client accepts."""
    inputs = skill.input_modes or card.default_input_modes
    for part in message.parts:
        if not any(_mode_matches(part.mime_type, accepted) for accepted in inputs):
            raise A2AError(
                ErrorCode.CONTENT_TYPE_NOT_SUPPORTED,
                f"skill {skill.id!r} does not accept {part.mime_type}; it accepts {', '.join(inputs)}",
            )
    outputs = skill.output_modes or card.default_output_modes
    if accepted and not any(_mode_matches(out, a) for out in outputs for a in accepted):
        raise A2AError(
            ErrorCode.CONTENT_TYPE_NOT_SUPPORTED,
            f"skill {skill.id!r} produces {', '.join(outputs)}, none of which the client accepts",
        )


def check_follow_up(task: Task, request: SendRequest) -> None:
    """Only a task waiting for input takes another message, and only in its own context."""
    if request.context_id and request.context_id != task.context_id:
        raise A2AError(
            ErrorCode.INVALID_PARAMS,
            f"task {task.id!r} belongs to context {task.context_id!r}, not {request.context_id!r}",
        )
    if not task.status.state.interrupted:
        state: TaskState = task.status.state
        raise A2AError(
            ErrorCode.UNSUPPORTED_OPERATION,
            f"task {task.id!r} is {state.value}; only a task waiting for input takes a new message",
        )


def skill_for(card: AgentCard, request: SendRequest) -> AgentSkill:
    """The skill a message asks for (its metadata's `skill`), the card's first skill by default."""
    skill_id = None
    for metadata in (request.metadata, request.message.metadata):
        if metadata and isinstance(metadata.get("skill"), str):
            skill_id = metadata["skill"]
    if skill_id is None:
        return card.skills[0]
    skill = card.skill(skill_id)
    if skill is None:
        known = ", ".join(s.id for s in card.skills)
        raise A2AError(ErrorCode.INVALID_PARAMS, f"unknown skill {skill_id!r}; this agent offers: {known}")
    return skill
