"""Writes committed together at the end of the event loop's turn: a service that makes many small writes while it
handles one event (a task's state, its events) pays for one transaction, not one each.

The contract: writes commit in the order they were made, in one transaction per turn of the event loop;
`after(callback)` runs `callback` once every write made before it is committed (at once when nothing is pending),
so that nothing is announced that is not stored; `flush()` commits what is pending now, and `joined()` opens a
transaction with what is pending first in it (a reader takes one, so it reads its own writes). Outside an event
loop a write commits at once. A commit the database refuses for a moment (locked, unreachable) is retried after
`RETRY_S`, the callbacks waiting; a write it refuses outright is logged and dropped alone, the others in its batch
committed without it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

log = logging.getLogger(__name__)

Write = Callable[[Connection], None]
RETRY_S = 0.5


class _Refused(Exception):
    """A pending write the database refused outright (inside a joined transaction)."""


class TurnBatch:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pending: list[Write] = []
        self._callbacks: list[Callable[[], None]] = []
        self._due: asyncio.Handle | None = None  # the commit at the end of this turn, on `_due_loop`
        self._due_loop: asyncio.AbstractEventLoop | None = None

    def write(self, write: Write) -> None:
        """`write(connection)` runs in the turn's transaction."""
        self._pending.append(write)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: commit now
            self.flush()
            return
        if self._due is None or self._due_loop is not loop:  # (a loop that ended took its commit with it)
            self._due, self._due_loop = loop.call_soon(self._commit_due), loop

    def after(self, callback: Callable[[], None]) -> None:
        """`callback()` once the writes made so far are committed."""
        if self._pending:
            self._callbacks.append(callback)
        else:
            callback()

    @contextmanager
    def joined(self) -> Iterator[Connection]:
        """A transaction of the caller's with the pending writes first in it: committed with it (one commit, not
        two), pending again when it fails. A pending write the database refuses outright is dropped alone first."""
        writes, self._pending = self._pending, []
        try:
            with self.engine.begin() as db:
                _apply(db, writes)
                yield db
        except _Refused:
            self._pending[:0] = writes
            self.flush()
            with self.engine.begin() as db:
                yield db
        except BaseException:
            self._pending[:0] = writes
            raise
        if not self._pending:  # (a write made inside the caller's transaction is not committed yet)
            self._run_callbacks()

    def flush(self) -> None:
        """Commit what is pending now (OperationalError: the database refused; nothing is lost, it is retried)."""
        if self._pending:
            writes, self._pending = self._pending, []
            try:
                self._commit(writes)
            except OperationalError:
                self._pending[:0] = writes
                raise
        self._run_callbacks()

    def _run_callbacks(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def _commit(self, writes: list[Write]) -> None:
        """`writes` in one transaction; should the database refuse one outright, each in its own, the refused one
        dropped. An OperationalError leaves in `writes` those not committed."""
        try:
            with self.engine.begin() as db:
                _apply(db, writes)
        except _Refused:
            while writes:
                try:
                    with self.engine.begin() as db:
                        _apply(db, writes[:1])
                except _Refused:
                    log.exception("a write the database refused was dropped")
                writes.pop(0)
            return
        writes.clear()

    def _commit_due(self) -> None:
        self._due = None
        try:
            self.flush()
        except OperationalError:
            log.warning("the database refused a commit; retrying in %.1f s", RETRY_S, exc_info=True)
            self._due = self._due_loop.call_later(RETRY_S, self._commit_due) if self._due_loop else None


def _apply(db: Connection, writes: list[Write]) -> None:
    """`writes` on `db`; a write the database refuses outright raises `_Refused` (OperationalError, a refusal for
    the moment, passes as it is)."""
    try:
        for write in writes:
            write(db)
    except OperationalError:
        raise
    except SQLAlchemyError as error:
        raise _Refused from error
