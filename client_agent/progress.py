"""A subtask's progress as the client records it: its state saved with every change, its task's status, its
events, and the user's answers when a worker (a contractor's or the client's own) needs more input."""

from __future__ import annotations

import asyncio

from client_agent.events import EventBus
from client_agent.models import InputAnswer
from client_agent.state import EventKind, Outcome, Status, SubtaskRun
from client_agent.storage import Store
from shared.a2a.models import Message, Part


def answer_message(answer: InputAnswer) -> Message:
    parts = ([Part.of_text(answer.text)] if answer.text else []) + ([Part.of_data(answer.data)] if answer.data else [])
    return Message(role="user", parts=parts or [Part.of_text("")])


class Progress:
    """Records a real subtask's progress (see `SilentProgress` for probes)."""

    def __init__(self, store: Store, events: EventBus, input_timeout_s: float) -> None:
        self.store = store
        self.events = events
        self.input_timeout_s = input_timeout_s

    def save(self, run: SubtaskRun, status: Status | None = None) -> None:
        if status is not None:
            run.status = status
        self.store.set_subtask(run.id, run.status.value, run.state.wire())

    def publish(self, run: SubtaskRun, event: EventKind, /, **data: object) -> None:
        self.events.publish(run.task_id, event, {"subtask": run.id, **data})

    def note_attempt(self, run: SubtaskRun, attempt: int, outcome: Outcome) -> None:
        run.state.attempts.append(outcome.record(attempt))
        run.state.cost.actual_usd = round(run.state.cost.actual_usd + outcome.cost_usd, 6)

    def ask(self, run: SubtaskRun, prompt: Message | None) -> None:
        """The subtask waits for its user: the prompt is shown and the task is input-required."""
        run.state.input_required = prompt.text() if prompt else "more input needed"
        self.save(run, Status.INPUT_REQUIRED)
        self.store.set_task(run.task_id, status=Status.INPUT_REQUIRED.value)
        self.publish(run, EventKind.INPUT_REQUIRED, prompt=run.state.input_required)

    async def wait_for_input(self, run: SubtaskRun) -> Message:
        """The user's answer, as the next message of the conversation (TimeoutError when none comes)."""
        try:
            answer = await asyncio.wait_for(run.answers.get(), timeout=self.input_timeout_s)
        except TimeoutError:
            raise TimeoutError("no answer to input-required") from None
        run.state.input_required = None
        self.save(run, Status.WORKING)
        self.store.set_task(run.task_id, status=Status.WORKING.value)
        self.publish(run, EventKind.INPUT)
        return answer_message(answer)


class SilentProgress(Progress):
    """A probe's progress: nothing stored or published (the client's users see probes in the subtask they ran
    beside), and no one to ask for input (a probe that needs input fails)."""

    def save(self, run: SubtaskRun, status: Status | None = None) -> None:
        if status is not None:
            run.status = status

    def publish(self, run: SubtaskRun, event: EventKind, /, **data: object) -> None:
        return None

    def ask(self, run: SubtaskRun, prompt: Message | None) -> None:
        return None

    async def wait_for_input(self, run: SubtaskRun) -> Message:
        raise TimeoutError("a probe does not answer input-required")
