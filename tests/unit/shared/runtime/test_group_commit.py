"""Group commit on a real SQLite file: writes commit in order, a callback runs once what came before it is on
disk, and a writer outlives the event loop it started on (a later loop's writes commit and call back too)."""

from __future__ import annotations

import asyncio

from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.engine import Connection

from shared.runtime.database import open_database
from shared.runtime.group_commit import GroupCommit

metadata = MetaData()
numbers = Table("numbers", metadata, Column("n", Integer, nullable=False))


def test_writes_commit_in_order_and_callbacks_wait_for_them(tmp_path):
    engine = open_database(f"sqlite:///{tmp_path}/numbers.db", metadata)

    def commit(db: Connection, batch: list[int]) -> None:
        with db.begin():
            db.execute(insert(numbers), [{"n": n} for n in batch])

    writes: GroupCommit[list[int]] = GroupCommit(engine, "test-writer", list, commit)

    def on_disk() -> list[int]:
        with engine.connect() as db:
            return [row[0] for row in db.execute(select(numbers.c.n))]

    async def write(values: range) -> list[list[int]]:
        seen: list[list[int]] = []
        durable = asyncio.Event()
        for n in values:
            writes.write(lambda batch, n=n: batch.append(n))
            writes.after_durable(lambda: seen.append(on_disk()))
        writes.after_durable(durable.set)
        await asyncio.wait_for(durable.wait(), timeout=10)
        return seen

    seen = asyncio.run(write(range(1, 51)))
    assert len(seen) == 50 and seen[-1] == list(range(1, 51))
    assert all(len(view) >= i for i, view in enumerate(seen, start=1))  # each callback saw its own write on disk

    again = asyncio.run(write(range(51, 53)))  # a new event loop: the writer of the old one is gone with it
    assert again[-1] == list(range(1, 53))

    writes.write(lambda batch: batch.append(53))  # no event loop: committed at once
    assert on_disk()[-1] == 53
    writes.close()
    engine.dispose()
