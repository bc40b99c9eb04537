"""The contractor's tasks: the A2A task state machine, each task's work on its worker, its event stream and its
push configs. Admission (`admission`), channel negotiation (`channels`), prices (`pricing`) and push delivery
(`push`) live beside it.

Plain asyncio, no web framework: `contractor_agent.rpc` turns JSON-RPC calls into calls on this object.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from contractor_agent.admission import Capacity, Limits, check_content_types, check_follow_up, skill_for
from contractor_agent.channels import open_message
from contractor_agent.identity import Identity
from contractor_agent.metrics import ContractorMetrics
from contractor_agent.pricing import Pricing
from contractor_agent.push import PushNotifier
from contractor_agent.store import TaskStore
from shared.a2a.dialects import Dialect
from shared.a2a.models import (
    A2AError,
    AgentCard,
    AgentSkill,
    Artifact,
    CoalesceProfile,
    ErrorCode,
    Message,
    Part,
    PushNotificationConfig,
    SendRequest,
    StreamEvent,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
    agent_message,
    can_transition,
    new_id,
)
from shared.runtime.observability import A2A_TASK_ID, TASK_ID
from shared.runtime.pubsub import Subscription as PubSubSubscription
from shared.runtime.pubsub import Topic
from shared.security.channel import Channel, owner_of_token
from shared.security.receipts import ReceiptSigner
from shared.workers.base import NeedsInput, Worker, WorkerError, WorkRequest, WorkResult
from shared.workers.compute import Cancelled

log = logging.getLogger(__name__)


@dataclass
class TaskRecord:
    task: Task
    skill: AgentSkill
    dialect: Dialect
    cancel_flag: threading.Event = field(default_factory=threading.Event)
    runner: asyncio.Task[None] | None = None
    events: Topic[StreamEvent] = field(default_factory=Topic)
    push_configs: dict[str, PushNotificationConfig] = field(default_factory=dict)
    channel: Channel | None = None  # the end-to-end channel, when the client opened one
    created: float = field(default_factory=time.monotonic)
    worker_history: list[Message] = field(default_factory=list)  # what the worker reads: plaintext
    owner: str | None = None  # the caller that created it: its API key, else its channel; None: anonymous

    @property
    def state(self) -> TaskState:
        return self.task.status.state


Subscription = PubSubSubscription[StreamEvent]


async def until_settled(subscription: Subscription) -> AsyncIterator[StreamEvent]:
    """A task's events until it ends or waits for input (its stream then closes), or the reader falls behind."""
    async for event in subscription.items():
        yield event
        if isinstance(event, TaskStatusUpdateEvent) and event.final:
            return


class TaskManager:
    def __init__(
        self,
        card: AgentCard,
        workers: Mapping[str, Worker],
        limits: Limits | None = None,
        notifier: PushNotifier | None = None,
        identity: Identity | None = None,
        metrics: ContractorMetrics | None = None,
        store: TaskStore | None = None,
    ) -> None:
        missing = [skill.id for skill in card.skills if skill.id not in workers]
        if missing:
            raise ValueError(f"no worker for skills: {', '.join(missing)}")
        self.card = card
        self.profile: CoalesceProfile | None = card.coalesce
        self.workers = dict(workers)
        self.limits = limits or Limits()
        self.notifier = notifier
        self.identity = identity or Identity()
        self.metrics = metrics or ContractorMetrics()
        self.capacity = Capacity(self.limits)
        self.pricing = Pricing(self.profile)
        keys = self.identity.signing_keys
        self.receipts = ReceiptSigner(self.profile.price, keys[0]) if keys and self.profile else None
        self.metrics.running.set_function(lambda: self.capacity.running)
        self.metrics.queued.set_function(lambda: self.capacity.waiting)
        self._tasks: OrderedDict[str, TaskRecord] = OrderedDict()
        self.store = store
        if store is not None:
            self._restore(store)

    def _restore(self, store: TaskStore) -> None:
        """Tasks from before a restart: finished ones answer as before; unfinished ones end failed, uncharged
        (their work, and any end-to-end channel keys, died with the process)."""
        for row in store.load(self.limits.max_tasks_kept):
            task = Task.model_validate(row["task"])
            record = TaskRecord(
                task=task,
                skill=self.card.skill(row["skill"]) or self.card.skills[0],
                dialect=Dialect(row["dialect"]),
                push_configs={k: PushNotificationConfig.model_validate(v) for k, v in row["push_configs"].items()},
                owner=row.get("owner"),
            )
            self._tasks[task.id] = record
            if not record.state.terminal:
                log.warning("task %s was %s when the contractor stopped: failed", task.id, record.state.value)
                self._fail(record, "the contractor restarted while this task was in progress; nothing was charged")

    # ------------------------------------------------------------ queries

    def get(self, task_id: str, caller: str | None) -> TaskRecord:
        """A task of `caller`'s. Tenants are kept apart: another caller's task is not found, exactly as a missing
        one (its existence is not revealed); an anonymous task is found by anyone who knows its id (ids are
        random, 122 bits)."""
        record = self._tasks.get(task_id)
        if record is None or (record.owner is not None and record.owner != caller):
            raise A2AError(ErrorCode.TASK_NOT_FOUND, f"task {task_id!r} not found")
        return record

    def snapshot(self, record: TaskRecord, history_length: int | None = None) -> Task:
        history = record.task.history
        if history_length is not None:
            history = history[-history_length:] if history_length else []
        return record.task.model_copy(update={"history": list(history), "artifacts": list(record.task.artifacts)})

    def list(
        self,
        caller: str | None,
        context_id: str | None = None,
        state: TaskState | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[TaskRecord], int]:
        """`caller`'s tasks, newest first, filtered; returns one page and the total count. An anonymous caller
        has no tasks to list: nothing tells one anonymous caller from another."""
        if caller is None:
            return [], 0
        matching = [
            r
            for r in reversed(self._tasks.values())
            if r.owner == caller
            and (context_id is None or r.task.context_id == context_id)
            and (state is None or r.state == state)
        ]
        return matching[offset : offset + limit], len(matching)

    def load(self) -> dict[str, Any]:
        return self.capacity.load(len(self._tasks))

    def quote(self, complexity: float = 1.0) -> float:
        """The price of one more task now, by eq. (7) of the cost model."""
        capacity = self.capacity
        return self.pricing.quote(capacity.running, capacity.waiting, self.limits.max_concurrent, complexity)

    def next_quote(self, leaving: bool) -> dict[str, Any]:
        """What `/v1/quote` would answer once a task that ends now is gone (`leaving`: it still holds a running
        place, which it gives up as it ends): a hire's final event carries it, so that its client need not ask."""
        capacity = self.capacity
        running = capacity.running - leaving
        price = self.pricing.quote(running, capacity.waiting, self.limits.max_concurrent)
        return {"priceUsd": price, "load": {**self.load(), "running": running}}

    # ------------------------------------------------------------ commands

    def submit(
        self, request: SendRequest, dialect: Dialect, caller: str | None, subscribe: bool = False
    ) -> tuple[TaskRecord, Subscription | None]:
        """Create a task of `caller`'s or continue one of its tasks waiting for input; schedule its work. Raises
        A2AError on refusal."""
        existing = self._tasks.get(request.task_id) if request.task_id else None
        if existing is not None and existing.owner is not None and existing.owner != caller:
            if not request.client_chooses_id:
                raise A2AError(ErrorCode.TASK_NOT_FOUND, f"task {request.task_id!r} not found")
            raise A2AError(ErrorCode.INVALID_PARAMS, f"task id {request.task_id!r} is taken; choose another")
        if existing is None and request.task_id and not request.client_chooses_id:
            raise A2AError(ErrorCode.TASK_NOT_FOUND, f"task {request.task_id!r} not found")
        if existing is not None:
            check_follow_up(existing.task, request)
        channel, plain = open_message(
            self.identity,
            existing is not None,
            existing.channel if existing else None,
            request.message,
            request.task_id or request.message.message_id,  # where the agent names the task: the opening message
        )
        received = channel.next_received if channel else 0
        try:
            skill = existing.skill if existing else skill_for(self.card, request)
            check_content_types(self.card, skill, plain, request.accepted_output_modes)
            self._admit()
        except A2AError:
            if channel is not None:  # a refused message does not use up its sequence number
                channel.next_received = received - 1
            raise
        if existing is None:
            record = self._create(request, skill, dialect)
            record.channel = channel  # without an API key, a task on a channel is its owner token's holder's
            record.owner = caller or (owner_of_token(channel.owner_token) if channel else None)
        else:
            record = existing
            record.cancel_flag = threading.Event()
        stamped = self._stamped(request.message, record.task)
        record.task.history.append(stamped)
        # what the worker reads: the same message where it came in plaintext, the opened one on a channel
        record.worker_history.append(stamped if plain is request.message else self._stamped(plain, record.task))
        # what was accepted is on disk before an answer says so (a non-blocking answer waits for it)
        if request.push_config is not None:
            self.set_push_config(record, request.push_config)  # which writes the task
        else:
            self._persist(record)
        subscription = self._subscribe(record) if subscribe else None
        if existing is None:
            self._emit(record, self.status_event(record))
        self.capacity.waiting += 1
        record.runner = asyncio.create_task(self._run(record, existing is None), name=f"task-{record.task.id}")
        return record, subscription

    async def wait_settled(self, record: TaskRecord, subscription: Subscription) -> None:
        """Wait (bounded) until the task ends or asks for input: a blocking send."""
        try:
            async with asyncio.timeout(self.limits.blocking_wait_s):
                async for _ in until_settled(subscription):
                    pass
        except TimeoutError:
            pass
        finally:
            record.events.unsubscribe(subscription)

    def resubscribe(self, task_id: str, caller: str | None) -> tuple[TaskRecord, Subscription | None]:
        """Reattach to a task's stream; a task that is done (or waits for input) gets no live subscription."""
        record = self.get(task_id, caller)
        if record.state.terminal or record.state.interrupted:
            return record, None
        return record, self._subscribe(record)

    def unsubscribe(self, record: TaskRecord, subscription: Subscription | None) -> None:
        record.events.unsubscribe(subscription)

    async def cancel(self, task_id: str, caller: str | None) -> TaskRecord:
        record = self.get(task_id, caller)
        if record.state.terminal:
            raise A2AError(
                ErrorCode.TASK_NOT_CANCELABLE,
                f"task {task_id!r} is {record.state.value} and cannot be canceled",
            )
        record.cancel_flag.set()
        runner = record.runner
        self._transition(record, TaskState.CANCELED, agent_message("canceled by the client"))
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        return record

    def set_push_config(self, record: TaskRecord, config: PushNotificationConfig) -> PushNotificationConfig:
        if self.notifier is None:
            raise A2AError(ErrorCode.PUSH_NOT_SUPPORTED, "push notifications are not supported")
        if config.id not in record.push_configs and len(record.push_configs) >= self.limits.max_push_configs_per_task:
            raise A2AError(
                ErrorCode.INVALID_PARAMS,
                f"at most {self.limits.max_push_configs_per_task} push configs per task",
            )
        record.push_configs[config.id] = config
        self._persist(record)
        return config

    def push_config(self, record: TaskRecord, config_id: str | None) -> PushNotificationConfig:
        if self.notifier is None:
            raise A2AError(ErrorCode.PUSH_NOT_SUPPORTED, "push notifications are not supported")
        if config_id is None and record.push_configs:
            return next(reversed(record.push_configs.values()))
        if config_id is not None and config_id in record.push_configs:
            return record.push_configs[config_id]
        raise A2AError(ErrorCode.TASK_NOT_FOUND, f"no push notification config for task {record.task.id!r}")

    def delete_push_config(self, record: TaskRecord, config_id: str) -> None:
        self.push_config(record, config_id)
        del record.push_configs[config_id]
        self._persist(record)

    async def close(self) -> None:
        runners = [r.runner for r in self._tasks.values() if r.runner is not None and not r.runner.done()]
        for record in self._tasks.values():
            record.cancel_flag.set()
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        for worker in {id(w): w for w in self.workers.values()}.values():
            await worker.close()

    # ------------------------------------------------------------ internals

    def _admit(self) -> None:
        limits = self.limits
        self.capacity.admit(len(self._tasks))
        while len(self._tasks) >= limits.max_tasks_kept:
            oldest = next((tid for tid, r in self._tasks.items() if r.state.terminal), None)
            if oldest is None:
                raise A2AError(ErrorCode.OVER_CAPACITY, "over capacity: too many unfinished tasks")
            del self._tasks[oldest]
            if self.store is not None:
                self.store.forget(oldest)

    def _create(self, request: SendRequest, skill: AgentSkill, dialect: Dialect) -> TaskRecord:
        task_id = request.task_id or new_id()
        complexity = 1.0
        meta = (request.metadata or {}).get("coalesce")
        if isinstance(meta, dict) and isinstance(meta.get("complexity"), int | float) and meta["complexity"] > 0:
            complexity = min(float(meta["complexity"]), 100.0)
        task = Task(
            id=task_id,
            context_id=request.context_id or new_id(),
            status=TaskStatus(state=TaskState.SUBMITTED),
            metadata={
                "skill": skill.id,
                "coalesce": {"quoteUsd": self.quote(complexity), "complexity": complexity},
            },
        )
        client_task = meta.get("clientTaskId") if isinstance(meta, dict) else None
        if isinstance(client_task, str) and len(client_task) <= 128:  # so that logs can follow it across services
            task.metadata["coalesce"]["clientTaskId"] = client_task
        record = TaskRecord(task=task, skill=skill, dialect=dialect, events=Topic(buffer=self.limits.subscriber_buffer))
        self._tasks[task_id] = record
        return record

    @staticmethod
    def _stamped(message: Message, task: Task) -> Message:
        return message.model_copy(update={"task_id": task.id, "context_id": task.context_id})

    def _subscribe(self, record: TaskRecord) -> Subscription:
        return record.events.subscribe()

    def status_event(self, record: TaskRecord, next_quote: dict[str, Any] | None = None) -> TaskStatusUpdateEvent:
        """The task's status as an event; a final one carries the bill (and `next_quote` beside it, when given)."""
        state = record.state
        bill = record.task.metadata.get("coalesce")
        if next_quote is not None and isinstance(bill, dict):
            bill = {**bill, "nextQuote": next_quote}
        return TaskStatusUpdateEvent(
            task_id=record.task.id,
            context_id=record.task.context_id,
            status=record.task.status,
            final=state.terminal or state.interrupted,
            metadata={"coalesce": bill} if state.terminal else None,
        )

    def _emit(self, record: TaskRecord, event: StreamEvent) -> None:
        """Announce `event` (to streams and webhooks) once what was written before it is on disk."""
        hooked = self.notifier is not None and record.push_configs and isinstance(event, TaskStatusUpdateEvent)
        snapshot = self.snapshot(record) if hooked else None  # the task as it is now, not when it is announced
        if self.store is None:
            self._announce(record, event, snapshot)
        else:
            self.store.after_durable(lambda: self._announce(record, event, snapshot))

    def _announce(self, record: TaskRecord, event: StreamEvent, snapshot: Task | None) -> None:
        record.events.publish(event)
        if self.notifier is not None and snapshot is not None:
            for config in record.push_configs.values():
                self.notifier.notify(config, snapshot, record.dialect)

    async def on_disk(self) -> None:
        """Returns once everything written so far is durable (at once without a store, or with nothing pending)."""
        if self.store is None:
            return
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def release() -> None:
            if not written.done():  # the request may have been canceled meanwhile
                written.set_result(None)

        self.store.after_durable(release)
        await written

    def _transition(self, record: TaskRecord, state: TaskState, message: Message | None = None) -> bool:
        if not can_transition(record.state, state):
            log.debug("task %s: refused move %s -> %s", record.task.id, record.state, state)
            return False
        leaving = record.state is TaskState.WORKING  # its work holds a running place until it returns
        if message is not None:
            message = self._stamped(message, record.task)
            record.task.history.append(message)
        record.task.status = TaskStatus(state=state, message=message)
        self._persist(record)
        if state.terminal:
            self.metrics.tasks.labels(state.value).inc()
            self.metrics.task_seconds.labels(record.skill.id).observe(time.monotonic() - record.created)
            log.info("task %s %s", record.task.id, state.value)
        streamed = state.terminal and len(record.events) > 0  # only a stream's reader gets the final event
        self._emit(record, self.status_event(record, self.next_quote(leaving) if streamed else None))
        return True

    def _progress(self, record: TaskRecord, text: str) -> None:
        """A worker's news of a working task: a status update, the state unchanged (not on an end-to-end channel,
        where it would travel in the clear)."""
        if record.state is not TaskState.WORKING or record.channel is not None:
            return
        message = self._stamped(agent_message(text[:2000]), record.task)
        record.task.status = TaskStatus(state=TaskState.WORKING, message=message)
        self._emit(record, self.status_event(record))

    def _persist(self, record: TaskRecord) -> None:
        if self.store is not None:
            configs = {k: v.wire() for k, v in record.push_configs.items()}
            self.store.save(record.task, record.skill.id, record.dialect.value, configs, record.owner)

    def _add_artifact(self, record: TaskRecord, artifact: Artifact) -> None:
        artifact = artifact.model_copy(update={"index": len(record.task.artifacts), "last_chunk": True})
        record.task.artifacts.append(artifact)
        self._emit(
            record,
            TaskArtifactUpdateEvent(
                task_id=record.task.id, context_id=record.task.context_id, artifact=artifact, last_chunk=True
            ),
        )

    async def _run(self, record: TaskRecord, new: bool) -> None:
        if new:  # one turn of the loop first: the reply that accepted a new task (a stream's opening event, whose
            # sender starts after this runner) goes out before the work, instead of after the work's first step; a
            # follow-up's stream opens with the task as its work has taken it up (no longer waiting for input)
            await asyncio.sleep(0)
        A2A_TASK_ID.set(record.task.id)
        client_task = (record.task.metadata.get("coalesce") or {}).get("clientTaskId")
        TASK_ID.set(client_task if isinstance(client_task, str) else None)
        await self.capacity.run(lambda: self._work(record))

    async def _work(self, record: TaskRecord) -> None:
        if record.cancel_flag.is_set() or not self._transition(record, TaskState.WORKING):
            return
        request = WorkRequest(
            task_id=record.task.id,
            skill=record.skill,
            messages=list(record.worker_history),
            cancelled=record.cancel_flag,
            progress=lambda text: self._progress(record, text),
        )
        worker = self.workers[record.skill.id]
        try:
            async with asyncio.timeout(self.limits.worker_timeout_s):
                outcome = await worker.run(request)
        except TimeoutError:
            record.cancel_flag.set()
            self._fail(record, f"the worker timed out after {self.limits.worker_timeout_s:g} s")
            return
        except Cancelled:
            return
        except WorkerError as error:
            self._fail(record, str(error))
            return
        except Exception:
            log.exception("task %s: worker %s crashed", record.task.id, worker.name)
            self._fail(record, f"internal error in worker {worker.name!r}")
            return
        if isinstance(outcome, NeedsInput):
            prompt = self._stamped(agent_message(outcome.prompt, {"missing": outcome.missing}), record.task)
            record.worker_history.append(prompt)
            if record.channel is not None:
                sealed = record.channel.seal_parts(prompt.parts)
                prompt = prompt.model_copy(update={"parts": [Part.of_text("input required (sealed)"), sealed]})
            self._transition(record, TaskState.INPUT_REQUIRED, prompt)
            return
        self._complete(record, outcome)

    def _fail(self, record: TaskRecord, reason: str) -> None:
        record.task.metadata["coalesce"]["costUsd"] = 0.0
        self._transition(record, TaskState.FAILED, agent_message(reason))

    def _complete(self, record: TaskRecord, result: WorkResult) -> None:
        if record.cancel_flag.is_set():
            return
        usage = result.usage
        quote = record.task.metadata["coalesce"]["quoteUsd"]
        cost = self.pricing.charge(quote, usage)
        billing = record.task.metadata["coalesce"]
        billing.update({"costUsd": round(cost, 9), "usage": usage.wire()})
        if self.receipts is not None:  # what it bills, signed with its card's key
            billing["receipt"] = self.receipts.sign(record.task.id, billing)
        self.metrics.charged_usd.inc(cost)
        worker = self.workers[record.skill.id].name
        self.metrics.worker_usage(worker, usage.input_tokens, usage.output_tokens, usage.compute_seconds)
        charged = {"coalesce": {"costUsd": billing["costUsd"], "usage": billing["usage"]}}
        artifacts = [a.model_copy(update={"metadata": {**(a.metadata or {}), **charged}}) for a in result.artifacts]
        summary = result.summary or "done"
        if record.channel is not None:  # the artifacts travel as the channel's last envelope
            artifacts, summary = [record.channel.seal_artifacts(artifacts)], "done (artifacts sealed)"
        for artifact in artifacts:
            self._add_artifact(record, artifact)
        self._transition(record, TaskState.COMPLETED, agent_message(summary))
