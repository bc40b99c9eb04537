"""Writes batched per event-loop turn, on a real SQLite file: one commit for a turn's writes, in order; callbacks
only once their writes are on disk; a joined transaction reads what is pending; a refused write dropped alone; a
locked database retried without losing anything."""

from __future__ import annotations

import asyncio
import sqlite3

from sqlalchemy import Column, Integer, MetaData, Table, event, insert, select
from sqlalchemy.engine import Connection, Engine

from shared.runtime import turn_batch
from shared.runtime.database import open_database
from shared.runtime.turn_batch import TurnBatch

metadata = MetaData()
numbers = Table("numbers", metadata, Column("n", Integer, primary_key=True, autoincrement=False))


def put(n: int) -> turn_batch.Write:
    def write(db: Connection) -> None:
        db.execute(insert(numbers), {"n": n})

    return write


def on_disk(path: str) -> list[int]:
    with sqlite3.connect(path) as db:  # another connection: only what is committed
        return [row[0] for row in db.execute("SELECT n FROM numbers ORDER BY rowid")]


def commits(engine: Engine) -> list[int]:
    counted: list[int] = []
    event.listen(engine, "commit", lambda _: counted.append(1))
    return counted


def test_a_turns_writes_commit_together_in_order_and_callbacks_wait_for_them(tmp_path):
    path = f"{tmp_path}/numbers.db"
    engine = open_database(f"sqlite:///{path}", metadata)
    batch, counted = TurnBatch(engine), commits(engine)

    async def turn() -> tuple[list[list[int]], list[int]]:
        seen: list[list[int]] = []
        for n in range(1, 11):
            batch.write(put(n))
            batch.after(lambda: seen.append(on_disk(path)))
        during = on_disk(path)  # still in the same turn: nothing committed yet
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return seen, during

    seen, during = asyncio.run(turn())
    assert during == [] and len(counted) == 1
    assert seen == [list(range(1, 11))] * 10  # every callback ran after the one commit, never before
    ran: list[int] = []
    batch.after(lambda: ran.append(1))  # nothing pending: at once
    batch.write(put(11))  # no event loop: committed at once
    assert ran == [1] and on_disk(path)[-1] == 11 and len(counted) == 2


def test_a_joined_transaction_sees_the_pending_writes_and_commits_them_with_its_own(tmp_path):
    path = f"{tmp_path}/numbers.db"
    engine = open_database(f"sqlite:///{path}", metadata)
    batch, counted = TurnBatch(engine), commits(engine)

    async def read_in_the_same_turn() -> list[int]:
        announced: list[bool] = []
        batch.write(put(1))
        batch.write(put(2))
        batch.after(lambda: announced.append(True))
        with batch.joined() as db:
            read = [row[0] for row in db.execute(select(numbers.c.n))]
            db.execute(insert(numbers), {"n": 3})
        assert announced == [True]
        return read

    assert asyncio.run(read_in_the_same_turn()) == [1, 2]
    assert on_disk(path) == [1, 2, 3] and len(counted) == 1

    async def fail_inside() -> None:
        batch.write(put(4))
        try:
            with batch.joined():
                raise RuntimeError("the caller's own failure")
        except RuntimeError:
            pass
        await asyncio.sleep(0)  # the write is pending again and goes in at the end of the turn

    asyncio.run(fail_inside())
    assert on_disk(path) == [1, 2, 3, 4]


def test_a_write_the_database_refuses_is_dropped_alone(tmp_path, caplog):
    path = f"{tmp_path}/numbers.db"
    engine = open_database(f"sqlite:///{path}", metadata)
    batch = TurnBatch(engine)

    async def turn(joined: bool) -> list[int]:
        batch.write(put(10 if joined else 1))
        batch.write(put(1))  # a duplicate key: refused outright
        batch.write(put(11 if joined else 2))
        if joined:
            with batch.joined() as db:
                return [row[0] for row in db.execute(select(numbers.c.n))]
        await asyncio.sleep(0)
        return on_disk(path)

    assert asyncio.run(turn(False)) == [1, 2]
    assert asyncio.run(turn(True)) == [1, 2, 10, 11]
    assert "refused" in caplog.text


def test_a_locked_database_is_retried_and_nothing_is_lost(tmp_path, monkeypatch):
    path = f"{tmp_path}/numbers.db"
    engine = open_database(f"sqlite:///{path}", metadata)
    batch = TurnBatch(engine)
    monkeypatch.setattr(turn_batch, "RETRY_S", 0.05)
    locker = sqlite3.connect(path, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=0"))
    engine.dispose()  # new connections: no waiting for the lock

    async def turn() -> tuple[list[int], list[int]]:
        announced: list[int] = []
        batch.write(put(1))
        batch.after(lambda: announced.append(1))
        await asyncio.sleep(0.2)  # refused, retried, refused again
        before = list(announced)
        locker.rollback()
        await asyncio.sleep(0.3)
        return before, announced

    before, after = asyncio.run(turn())
    assert before == [] and after == [1]
    assert on_disk(path) == [1]


def test_a_write_on_a_new_event_loop_commits_though_the_old_loop_ended_with_a_retry_due(tmp_path, monkeypatch):
    path = f"{tmp_path}/numbers.db"
    engine = open_database(f"sqlite:///{path}", metadata)
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=0"))
    engine.dispose()  # new connections: no waiting for the lock
    batch = TurnBatch(engine)
    monkeypatch.setattr(turn_batch, "RETRY_S", 60.0)  # the retry would come long after its loop ended
    locker = sqlite3.connect(path, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")

    async def write(n: int) -> list[int]:
        announced: list[int] = []
        batch.write(put(n))
        batch.after(lambda: announced.append(n))
        await asyncio.sleep(0.01)
        return announced

    assert asyncio.run(write(1)) == []  # refused; its retry is due on a loop that is gone
    locker.rollback()
    assert asyncio.run(write(2)) == [2]  # a new loop commits at the end of its turn, the earlier write first
    assert on_disk(path) == [1, 2]
