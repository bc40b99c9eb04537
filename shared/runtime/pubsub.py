"""Bounded publish/subscribe in one process: a `Topic` fans items out to `Subscription`s, each a bounded queue.

The contract: `publish` never blocks and never fails; a subscriber whose queue is full is dropped from the topic
(marked `overflowed`) and sees the items it already had, then the end of its stream, so a slow reader can never
slow the publisher or take unbounded memory. A topic holds at most `max_subscribers` readers; one more is refused
with `TooManySubscribers`. The client's task events and the contractor's A2A streams both use it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TooManySubscribers(Exception):
    """The topic has as many readers as it takes."""


class Subscription(Generic[T]):
    """One reader's bounded queue, on the event loop: the publisher wakes a waiting reader (no timer, no task)."""

    def __init__(self, maxsize: int) -> None:
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._wake: asyncio.Future[None] | None = None  # the reader's, while it waits
        self.overflowed = False
        self.closed = False

    def offer(self, item: T) -> bool:
        """Queue the item; False (and `overflowed`) when the reader is too far behind."""
        if len(self._items) >= self._maxsize:
            self.overflowed = True
        else:
            self._items.append(item)
        self._wake_reader()
        return not self.overflowed

    def close(self) -> None:
        """No more items: the reader drains what it has, then its stream ends."""
        self.closed = True
        self._wake_reader()

    def _wake_reader(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    @property
    def ended(self) -> bool:
        return (self.overflowed or self.closed) and not self._items

    async def items(self, poll_s: float = 1.0, until: Callable[[], bool] | None = None) -> AsyncIterator[T]:
        """Items as they come, until the subscription is dropped or closed and drained, or `until()` is true
        with nothing left queued (checked every `poll_s`)."""
        while await self._ready(poll_s, until):
            yield self._items.popleft()

    async def batches(self, poll_s: float = 1.0, until: Callable[[], bool] | None = None) -> AsyncIterator[list[T]]:
        """As `items`, but everything queued at once comes as one list (a reader that writes to a socket sends
        it in one write)."""
        while await self._ready(poll_s, until):
            batch = list(self._items)
            self._items.clear()
            yield batch

    async def _ready(self, poll_s: float, until: Callable[[], bool] | None) -> bool:
        """True once an item is queued; False when the stream is over (see `items`)."""
        while not self.ended:
            if self._items:
                return True
            if until is not None and until():  # what `until` itself let in (a store's read commits what is
                return bool(self._items)  # pending, whose callbacks may offer items) is still read
            self._wake = asyncio.get_running_loop().create_future()
            try:
                if until is None:
                    await self._wake
                else:
                    await asyncio.wait((self._wake,), timeout=poll_s)
            finally:
                self._wake = None
        return False


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
            subscription.close()
            self._subscribers.discard(subscription)

    def publish(self, item: T) -> None:
        for subscription in list(self._subscribers):
            if not subscription.offer(item):
                self._subscribers.discard(subscription)
