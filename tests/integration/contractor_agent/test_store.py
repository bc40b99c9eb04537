"""The contractor's task store: writes group-committed off the event loop, announced only once on disk."""

from __future__ import annotations

import asyncio

from sqlalchemy import event, func, select

from contractor_agent.store import SqlTaskStore, tasks
from shared.a2a.models import Task, TaskState, TaskStatus


def task(number: int, state: TaskState = TaskState.WORKING) -> Task:
    return Task(id=f"t-{number}", context_id="c", status=TaskStatus(state=state))


def test_writes_are_batched_and_callbacks_wait_for_their_commit(database):
    store = SqlTaskStore(database("tasks"))
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda connection: commits.append(1))
    on_disk: list[int] = []

    def rows() -> int:
        with store.engine.connect() as db:
            return db.execute(select(func.count()).select_from(tasks)).scalar_one()

    async def scenario() -> list[str]:
        seen = []
        for n in range(300):  # one turn of the loop: one batch, or a few
            store.save(task(n), "skill", "1.0", {}, None)
            store.save(task(n, TaskState.COMPLETED), "skill", "1.0", {}, None)  # the last write of a task wins
        done = asyncio.get_running_loop().create_future()
        store.after_durable(lambda: (on_disk.append(rows()), done.set_result(None)))
        assert not on_disk  # nothing is announced before its commit
        await asyncio.wait_for(done, 30)
        with store.engine.connect() as db:
            seen = [row.task["status"]["state"] for row in db.execute(select(tasks))]
        store.save(task(999), "skill", "1.0", {}, None)
        for n in range(3):  # forgotten in one batch (each row's delete goes to the driver as it is)
            store.forget(f"t-{n}")
        later = asyncio.get_running_loop().create_future()
        store.after_durable(lambda: later.set_result(rows()))
        assert await asyncio.wait_for(later, 30) == 298  # 999 in, t-0 to t-2 out
        return seen

    states = asyncio.run(scenario())
    store.close()
    assert on_disk == [300] and states == ["completed"] * 300
    assert len(commits) <= 6, len(commits)  # 600 writes, a handful of transactions


def test_outside_an_event_loop_a_write_commits_at_once_and_close_writes_what_is_pending(tmp_path):
    url = f"sqlite:///{tmp_path}/tasks.db"
    store = SqlTaskStore(url)
    store.save(task(1, TaskState.COMPLETED), "skill", "1.0", {}, None)  # no loop: committed now
    called = []
    store.after_durable(lambda: called.append(True))
    assert called == [True]

    async def queue_and_stop() -> None:
        store.save(task(2, TaskState.COMPLETED), "skill", "1.0", {}, None)

    asyncio.run(queue_and_stop())
    store.close()  # the writer writes task 2 before it stops
    reopened = SqlTaskStore(url)
    assert [row["id"] for row in reopened.load(10)] == ["t-1", "t-2"]
    reopened.close()
