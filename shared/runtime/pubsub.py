"""Bounded publish/subscribe in one process: a `Topic` fans items out to `Subscription`s, each a bounded queue.

The contract: `publish` never blocks and never fails; a subscriber whose queue is full is dropped from the topic
(marked `overflowed`) and sees the items it already had, then the end of its stream, so a slow reader can never
slow the publisher or take unbounded memory. A topic holds at most `max_subscribers` readers; one more is refused
with `TooManySubscribers`. The client's task events and the contractor's A2A streams both use it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TooManySubscribers(Exception):
    """The topic has as many readers as it takes."""


class Subscription(Generic[T]):
    """One reader's bounded queue."""

    def __init__(self, maxsize: int) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.closed = False

    def offer(self, item: T) -> bool:
        """Queue the item; False (and `overflowed`) when the reader is too far behind."""
        try:
            self._queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.overflowed = True
            return False

    @property
    def ended(self) -> bool:
        return (self.overflowed or self.closed) and self._queue.empty()

    async def items(self, poll_s: float = 1.0, until: Callable[[], bool] | None = None) -> AsyncIterator[T]:
        """Items as they come, until the subscription is dropped or closed and drained, or `until()` is true
        with nothing left queued (checked every `poll_s`)."""
        while not self.ended:
            if until is not None and until() and self._queue.empty():
                return
            try:
                yield await asyncio.wait_for(self._queue.get(), timeout=poll_s)
            except TimeoutError:
                continue


class Topic(Generic[T]):
    """Readers of one stream of items."""

    def __init__(self, max_subscribers: int = 256, buffer: int = 1024) -> None:
        self.max_subscribers = max_subscribers
        self.buffer = buffer
        self._subscribers: set[Subscription[T]] = set()

    def __len__(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription[T]:
        if len(self._subscribers) >= self.max_subscribers:
            raise TooManySubscribers(f"{len(self._subscribers)} readers already")
        subscription: Subscription[T] = Subscription(self.buffer)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription[T] | None) -> None:
        if subscription is not None:
            subscription.closed = True
            self._subscribers.discard(subscription)

    def publish(self, item: T) -> None:
        for subscription in list(self._subscribers):
            if not subscription.offer(item):
                self._subscribers.discard(subscription)
