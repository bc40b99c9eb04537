"""The bounded pub/sub both services use: fan-out, bounds, a slow reader dropped without slowing the publisher."""

from __future__ import annotations

import asyncio

import pytest

from shared.runtime.pubsub import TooManySubscribers, Topic


async def test_every_reader_gets_every_item_in_order():
    topic: Topic[int] = Topic()
    first, second = topic.subscribe(), topic.subscribe()
    for item in range(5):
        topic.publish(item)
    topic.unsubscribe(first)  # closed: it drains what it had, then ends
    assert [item async for item in first.items()] == [0, 1, 2, 3, 4]
    received = []
    async for item in second.items(poll_s=0.01, until=lambda: len(received) == 5):
        received.append(item)
    assert received == [0, 1, 2, 3, 4]


async def test_a_reader_that_falls_behind_is_dropped_and_ends_after_what_it_had():
    topic: Topic[int] = Topic(buffer=3)
    slow, fast = topic.subscribe(), topic.subscribe()
    drained = []
    for item in range(10):
        topic.publish(item)  # never blocks, never raises
        drained.append(await anext(aiter(fast.items(poll_s=0.01))))
    assert slow.overflowed and len(topic) == 1
    assert [item async for item in slow.items(poll_s=0.01)] == [0, 1, 2]
    assert drained == list(range(10))


async def test_readers_are_bounded_and_leave_cleanly():
    topic: Topic[str] = Topic(max_subscribers=2)
    one, _two = topic.subscribe(), topic.subscribe()
    with pytest.raises(TooManySubscribers):
        topic.subscribe()
    topic.unsubscribe(one)
    topic.unsubscribe(None)  # nothing to leave: no error
    assert len(topic) == 1
    topic.subscribe()


async def test_an_item_that_until_itself_lets_in_is_still_read():
    """As the client's event stream: asking whether the task is done reads the store, which commits the pending
    final event and offers it; that event must not be lost to the end of the stream."""
    topic: Topic[str] = Topic()
    subscription = topic.subscribe()

    pending = ["completed"]

    def done() -> bool:
        while pending:
            topic.publish(pending.pop())
        return True

    assert [item async for item in subscription.items(poll_s=0.01, until=done)] == ["completed"]


async def test_until_ends_an_idle_stream():
    topic: Topic[int] = Topic()
    subscription = topic.subscribe()
    done = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, done.set)
    assert [item async for item in subscription.items(poll_s=0.01, until=done.is_set)] == []


async def test_a_waiting_reader_is_woken_by_each_item_and_by_its_close():
    topic: Topic[int] = Topic()
    subscription = topic.subscribe()
    received: list[int] = []

    async def read() -> None:
        async for item in subscription.items():  # no `until`: no polling, the publisher wakes it
            received.append(item)

    reader = asyncio.create_task(read())
    await asyncio.sleep(0)
    topic.publish(1)
    await asyncio.sleep(0)
    topic.publish(2)
    await asyncio.sleep(0)
    assert received == [1, 2] and not reader.done()
    topic.unsubscribe(subscription)  # closed while it waits: its stream ends at once
    await asyncio.wait_for(reader, 1)
    assert received == [1, 2]
