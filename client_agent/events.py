"""Task events: each numbered and appended to the store (so a reader can resume with `Last-Event-ID`), then offered
to live readers of that task and of the whole market through bounded topics (`shared.runtime.pubsub`)."""

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
        topic = self._tasks.setdefault(task_id, Topic(self.max_subscribers))
        try:
            subscription = topic.subscribe()
        except TooManySubscribers:
            raise Overloaded("too many readers of this task's events") from None
        try:
            last = after
            for stored in self.store.events(task_id, after):
                last = stored["seq"]
                yield {"seq": stored["seq"], "kind": stored["kind"], "data": stored["data"], "at": stored["at"]}
                if stored["kind"] in TERMINAL:
                    return
            async for event in subscription.items(until=done):
                if event["seq"] > last:
                    last = event["seq"]
                    yield event
                    if event["kind"] in TERMINAL:
                        return
        finally:
            topic.unsubscribe(subscription)
            if not len(topic):
                self._tasks.pop(task_id, None)
