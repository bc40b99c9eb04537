"""Writes group-committed off the event loop: the loop only adds a write to the pending batch; a writer thread, on
a database connection of its own, commits whatever is pending in one transaction and then, back on the loop, runs
the callbacks that waited for those writes to be durable.

The contract: writes commit in the order they were made (a batch is everything written since the last one);
`after_durable(callback)` runs `callback` on the event loop once every write made before it is committed (at once
when nothing is pending); a commit that fails is retried on a new connection, and the callbacks wait (nothing is
announced that is not on disk). Outside an event loop a write commits at once. One event loop at a time: a write
from a new loop (the old one gone) first drains the old loop's writer. `close` commits what is pending and stops
the writer; a later write starts a new one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

B = TypeVar("B")  # a batch of pending writes: what `empty` makes, `put` adds to and `commit` writes

RETRY_S = 0.5


class GroupCommit(Generic[B]):
    def __init__(
        self, engine: Engine, name: str, empty: Callable[[], B], commit: Callable[[Connection, B], None]
    ) -> None:
        """`commit(connection, batch)` writes a batch in one transaction of its own."""
        self.engine = engine
        self.name = name
        self._empty = empty
        self._commit = commit
        self._lock = threading.Condition()
        self._pending = empty()
        self._dirty = False  # something is pending
        self._written = 0  # awaited writes made so far (event loop side)
        self._durable = 0  # of which committed
        self._waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writer: threading.Thread | None = None
        self._closing = False

    def write(self, put: Callable[[B], None], awaited: bool = True) -> None:
        """`put(batch)` adds one write to the pending batch (under the writer's lock). A write that is not
        `awaited` commits in order like the others but no `after_durable` callback waits for it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop to call back: commit now
            batch = self._empty()
            put(batch)
            with self.engine.connect() as db:
                self._commit(db, batch)
            return
        if self._loop is not loop and self._writer is not None:  # a new event loop: the old one is gone
            self.close()  # its writes commit first; its callbacks have no loop left to run on
            self._waiting.clear()
            self._durable = self._written
        with self._lock:
            if self._writer is None:
                self._loop = loop
                self._writer = threading.Thread(target=self._write, name=self.name, daemon=True)
                self._writer.start()
            put(self._pending)
            self._dirty = True
            self._written += awaited
            self._lock.notify()

    def after_durable(self, callback: Callable[[], None]) -> None:
        if self._durable >= self._written:
            callback()
        else:
            self._waiting.append((self._written, callback))

    def _write(self) -> None:
        """The writer thread: one transaction per batch, then the callbacks of what it made durable."""
        db: Connection | None = None
        try:
            while True:
                with self._lock:
                    while not self._dirty and not self._closing:
                        self._lock.wait()
                    if not self._dirty:
                        return
                    batch, upto, loop = self._pending, self._written, self._loop
                    self._pending, self._dirty = self._empty(), False
                while True:
                    try:
                        db = db or self.engine.connect()
                        self._commit(db, batch)
                        break
                    except SQLAlchemyError:
                        log.exception("%s: a commit failed; retrying", self.name)
                        _discard(db)
                        db = None
                        time.sleep(RETRY_S)
                assert loop is not None
                with contextlib.suppress(RuntimeError):  # the loop is gone (the process is stopping)
                    loop.call_soon_threadsafe(self._made_durable, upto)
        finally:
            _discard(db)

    def _made_durable(self, upto: int) -> None:
        self._durable = max(self._durable, upto)
        while self._waiting and self._waiting[0][0] <= self._durable:
            _, callback = self._waiting.popleft()
            try:
                callback()
            except Exception:
                log.exception("%s: a callback after a commit failed", self.name)

    def close(self) -> None:
        """Commits what is pending and stops the writer (waiting for it)."""
        with self._lock:
            writer, self._closing = self._writer, True
            self._lock.notify()
        if writer is not None:
            writer.join(timeout=30)
        with self._lock:
            self._writer, self._closing = None, False


def _discard(db: Connection | None) -> None:
    if db is not None:
        with contextlib.suppress(SQLAlchemyError):
            db.close()
