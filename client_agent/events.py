"""Task events: each numbered and appended to the store (so a reader can resume with `Last-Event-ID`), then, once
stored, offered to live readers of that task and of the whole market through bounded topics
(`shared.runtime.pubsub`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from client_agent.errors import Overloaded
from client_agent.state import TERMINAL, EventKind
from client_agent.storage import Store
from shared.runtime.pubsub import TooManySubscribers, Topic

Event = dict[str, Any]


class EventBus:
    def __init__(self, store: Store, max_subscribers: int) -> None:
        self.store = store
        self.max_subscribers = max_subscribers
        self._tasks: dict[str, Topic[Event]] = {}
        self._market: Topic[Event] = Topic(max_subscribers)  # readers of every task's events (the dashboard)
        self.last_seq = store.last_event_seq()  # the latest event's number (one client per database)

    def publish(self, task_id: str, kind: EventKind, data: dict[str, Any]) -> None:
        self.last_seq += 1
        at = time.time()
        event = {"seq": self.last_seq, "kind": kind.value, "data": data, "at": at}
        self.store.append_event(self.last_seq, task_id, kind.value, data, at)
        self.store.after_stored(lambda: self._offer(task_id, event))

    def _offer(self, task_id: str, event: Event) -> None:
        """A stored event to its task's live readers and the market's."""
        topic = self._tasks.get(task_id)
        if topic is not None:
            topic.publish(event)
        self._market.publish({**event, "task": task_id})

    def stream_market(self) -> AsyncIterator[Event]:
        """Every task's events from now on (live only), until the reader goes away or falls behind; refused at
        once when there are too many readers."""
        try:
            subscription = self._market.subscribe()
        except TooManySubscribers:
            raise Overloaded("too many readers of the market's events") from None

        async def events() -> AsyncIterator[Event]:
            try:
                async for event in subscription.items():
                    yield event
            finally:
                self._market.unsubscribe(subscription)

        return events()

    async def stream(self, task_id: str, after: int, done: Callable[[], bool]) -> AsyncIterator[Event]:
        """Stored events after `after`, then live ones, until the task's final event (or `done()` says the task
        ended before this reader came)."""
        async for batch in self.stream_batches(task_id, after, done):
            for event in batch:
                yield event

    async def stream_batches(self, task_id: str, after: int, done: Callable[[], bool]) -> AsyncIterator[list[Event]]:
        """As `stream`, the events published together (in one turn of the event loop) coming as one list."""
        topic = self._tasks.setdefault(task_id, Topic(self.max_subscribers))
        try:
            subscription = topic.subscribe()
        except TooManySubscribers:
            raise Overloaded("too many readers of this task's events") from None
        try:
            last = after
            stored = [
                {"seq": e["seq"], "kind": e["kind"], "data": e["data"], "at": e["at"]}
                for e in self.store.events(task_id, after)
            ]
            async for batch in _batches_from(stored, subscription.batches(until=done)):
                fresh = _through_the_end([e for e in batch if e["seq"] > last])
                if fresh:
                    last = fresh[-1]["seq"]
                    yield fresh
                    if fresh[-1]["kind"] in TERMINAL:
                        return
        finally:
            topic.unsubscribe(subscription)
            if not len(topic):
                self._tasks.pop(task_id, None)


async def _batches_from(first: list[Event], then: AsyncIterator[list[Event]]) -> AsyncIterator[list[Event]]:
    if first:
        yield first
    async for batch in then:
        yield batch


def _through_the_end(batch: list[Event]) -> list[Event]:
    """The events up to and including the task's final one (none after it is read)."""
    end = next((i for i, e in enumerate(batch) if e["kind"] in TERMINAL), None)
    return batch if end is None else batch[: end + 1]
