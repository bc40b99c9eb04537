"""Workers: the things that do work, for a contractor or for the client itself, behind one small interface.

The contract of a `Worker`:
- `run(request)` takes a `WorkRequest` (the skill and the task's conversation so far, plaintext) and returns a
  `WorkResult` (artifacts plus measured usage) or `NeedsInput` (the task goes to input-required; the
  conversation continues with the next message on the same task id, and `run` is called again with it).
- A failure worth telling the caller raises `WorkerError` with a message fit to show; anything else is a bug.
- `request.cancelled` is set when the task is canceled: long work checks it and stops; the caller also
  cancels the coroutine.
- `request.progress(text)` tells the caller how the work goes (a status update while it works); optional.
- `close()` releases what the worker holds (clients, connections); it is called once, when its owner stops,
  and the worker is not used after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.a2a.models import AgentSkill, Artifact, Message, Part


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    compute_seconds: float = 0.0
    estimated: bool = False

    def wire(self) -> dict[str, Any]:
        return {
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "computeSeconds": round(self.compute_seconds, 6),
            "estimated": self.estimated,
        }


@dataclass
class WorkRequest:
    task_id: str
    skill: AgentSkill
    messages: list[Message]
    cancelled: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[str], None] = field(default=lambda text: None)

    def text(self) -> str:
        """The user's text, all turns joined."""
        return "\n".join(m.text() for m in self.messages if m.role == "user" and m.text())

    def data(self) -> dict[str, Any]:
        """The user's data parts, all turns merged (later turns win)."""
        merged: dict[str, Any] = {}
        for message in self.messages:
            if message.role == "user":
                merged.update(message.data())
        return merged


@dataclass
class WorkResult:
    artifacts: list[Artifact]
    usage: Usage = field(default_factory=Usage)
    summary: str | None = None


@dataclass
class NeedsInput:
    """The worker cannot go on without more from the client; `prompt` says what."""

    prompt: str
    missing: list[str] = field(default_factory=list)


class WorkerError(Exception):
    """The work failed for a reason worth telling the client (bad input, upstream error)."""


class Worker(Protocol):
    """See the module's docstring for the contract."""

    name: str

    async def run(self, request: WorkRequest) -> WorkResult | NeedsInput: ...

    async def close(self) -> None: ...


class StatelessWorker:
    """A worker that holds nothing to release: `close()` does nothing."""

    name: str

    async def close(self) -> None:
        return None


class EchoWorker(StatelessWorker):
    """Diagnostics and benchmarks: returns the client's last message as an artifact."""

    name = "echo"

    async def run(self, request: WorkRequest) -> WorkResult:
        last = next(m for m in reversed(request.messages) if m.role == "user")
        return WorkResult(artifacts=[Artifact(name="echo", parts=list(last.parts))], summary="echoed")


def text_artifact(name: str, text: str) -> Artifact:
    return Artifact(name=name, parts=[Part.of_text(text)])


def data_artifact(name: str, data: dict[str, Any]) -> Artifact:
    return Artifact(name=name, parts=[Part.of_data(data)])
