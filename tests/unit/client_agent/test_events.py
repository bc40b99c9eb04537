"""Task events on a real SQLite file: numbered by the client, in order, and the numbering goes on where the
database left it (a restarted client never reuses a number a reader may hold as its `Last-Event-ID`)."""

from __future__ import annotations

import asyncio

from client_agent.events import EventBus
from client_agent.state import EventKind
from client_agent.storage import Store


def test_events_are_numbered_on_from_what_the_database_holds(tmp_path):
    url = f"sqlite:///{tmp_path}/events.db"
    first = EventBus(Store(url), max_subscribers=4)
    first.publish("task-a", EventKind.SUBMITTED, {"n": 1})
    first.publish("task-b", EventKind.SUBMITTED, {"n": 2})
    first.store.close()

    restarted = EventBus(Store(url), max_subscribers=4)
    assert restarted.last_seq == 2
    restarted.publish("task-a", EventKind.COMPLETED, {"n": 3})
    stored = restarted.store.events("task-a")
    assert [(e["seq"], e["kind"], e["data"]) for e in stored] == [
        (1, "submitted", {"n": 1}),
        (3, "completed", {"n": 3}),
    ]

    async def resume() -> list[int]:  # a reader that saw event 1 resumes after it
        return [e["seq"] async for e in restarted.stream("task-a", 1, lambda: True)]

    assert asyncio.run(resume()) == [3]
