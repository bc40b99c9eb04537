"""The client's typed state: task and subtask statuses, event kinds, a subtask's persisted state, one run of a
subtask and the outcome of one attempt."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from client_agent.models import InputAnswer, SubtaskSpec
from client_agent.verification import Verdict
from shared.a2a.models import Artifact

LOCAL = "local"  # where the client's own worker did the work


class Status(StrEnum):
    """A task's or a subtask's status (subtasks start `pending`)."""

    PENDING = "pending"
    SUBMITTED = "submitted"
    WORKING = "working"
    INPUT_REQUIRED = "input-required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED})


class EventKind(StrEnum):
    """What a task event says; the task's final event is its terminal status."""

    SUBMITTED = "submitted"
    DECOMPOSITION = "decomposition"
    DECISION = "decision"
    DISPATCH = "dispatch"
    CONTRACTOR = "contractor"
    LOCAL = "local"
    INPUT_REQUIRED = "input-required"
    INPUT = "input"
    VERIFICATION = "verification"
    SETTLEMENT = "settlement"
    SUBTASK = "subtask"
    PROBE = "probe"
    AGREEMENT = "agreement"
    FEEDBACK = "feedback"
    OVERCHARGE = "overcharge"
    RECOVERED = "recovered"
    ERROR = "error"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class Wire(BaseModel):
    """Python names in code, camelCase on the wire and in the database."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class AttemptRecord(Wire):
    attempt: int
    where: str
    ok: bool
    reason: str
    cost_usd: float = 0.0
    seconds: float = 0.0


class SubtaskCost(Wire):
    estimated_usd: float | None = None
    actual_usd: float = 0.0


class SubtaskState(Wire):
    """What the client keeps of a subtask (persisted with every change; shown by `GET /v1/tasks/ID` as `view`)."""

    attempts: list[AttemptRecord] = Field(default_factory=list)
    cost: SubtaskCost = Field(default_factory=SubtaskCost)
    decision: dict[str, Any] | None = None  # the last decision record
    a2a_task_id: str | None = Field(default=None, alias="a2aTaskId")  # the contractor's task of the current hire
    # the owner token of that hire's end-to-end channel: to cancel it after a restart; kept, never shown (`view`)
    a2a_channel_token: str | None = Field(default=None, alias="a2aChannelToken")
    excluded: dict[str, str] = Field(default_factory=dict)  # contractor id -> why it may not have this subtask
    input_required: str | None = None  # the prompt while the subtask waits for input
    where: str | None = None
    reason: str | None = None
    verification: dict[str, Any] | None = None
    artifacts: list[dict[str, Any]] = Field(default_factory=list)
    value_usd: float | None = None  # what the subtask is worth: what a wrong or missing answer loses
    quality: dict[str, Any] | None = None  # the chosen agent's competence when it was chosen
    signals: list[dict[str, Any]] = Field(default_factory=list)  # quality signals this subtask gave
    feedback: dict[str, Any] | None = None  # the grade its user gave

    def view(self) -> dict[str, Any]:
        """What users see of it: all but the channel's owner token."""
        return self.model_dump(mode="json", by_alias=True, exclude={"a2a_channel_token"})


@dataclass
class SubtaskRun:
    """One subtask being worked on: its spec, its state, and the answers its user sends while it waits."""

    id: str
    task_id: str
    spec: SubtaskSpec
    state: SubtaskState = field(default_factory=SubtaskState)
    status: Status = Status.PENDING
    answers: asyncio.Queue[InputAnswer] = field(default_factory=lambda: asyncio.Queue(8))
    first_attempt: int = 1  # after a restart, attempts go on from where the ledger left them


@dataclass
class Outcome:
    """How one attempt went."""

    ok: bool
    where: str  # LOCAL, or a contractor id
    reason: str = ""
    artifacts: list[Artifact] = field(default_factory=list)
    verdict: Verdict | None = None
    cost_usd: float = 0.0
    seconds: float = 0.0
    busy_s: float | None = None  # the contractor was at capacity: try again after this many seconds
    overcharge: str | None = None  # the contractor charged above its price list (paid what the list allows)

    def record(self, attempt: int) -> AttemptRecord:
        return AttemptRecord(
            attempt=attempt,
            where=self.where,
            ok=self.ok,
            reason=self.reason,
            cost_usd=round(self.cost_usd, 6),
            seconds=round(self.seconds, 3),
        )
