"""The contractor's tasks on disk (SQLAlchemy Core: an SQLite file in WAL mode by default, PostgreSQL by URL), so
that a restart loses no task: finished ones stay answerable, unfinished ones end as failed (never charged)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, bindparam, delete, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from shared.a2a.models import Task
from shared.runtime.database import DriverStatement, open_database
from shared.runtime.group_commit import GroupCommit
from shared.security.channel import MAX_SEEN_CHANNELS, REPLAY_WINDOW_S, ReplayGuard

metadata = MetaData()

tasks = Table(
    "contractor_tasks",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("skill", String(128), nullable=False),
    Column("dialect", String(16), nullable=False),
    Column("task", JSON, nullable=False),
    Column("push_configs", JSON, nullable=False),
    Column("updated_at", Float, nullable=False, index=True),
    Column("owner", String(64), nullable=True),  # the caller that created it (None: anonymous)
)

channel_claims = Table(
    "contractor_channel_claims",
    metadata,
    Column("ephemeral_key", String(64), primary_key=True),  # a `channel_claim` (the name is from before sessions)
    Column("at", Float, nullable=False, index=True),
)


_purge_claims = delete(channel_claims).where(channel_claims.c.at < bindparam("before"))


@dataclass
class Pending:
    """What the store's writer commits next: task id -> its row (None: forget it), and channels claimed."""

    tasks: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)


class TaskStore(Protocol):
    """Where a contractor's tasks persist. `save` and `forget` are ordered writes that may be batched; once
    everything written before it is durable, `after_durable(callback)` runs `callback` on the event loop (at once
    when nothing is pending): a task's new state is announced, and answered, only after that. `load` gives the
    newest `limit` tasks, oldest first, as rows of `id`, `skill`, `dialect`, `task` (the task as JSON),
    `push_configs` and `owner` (the caller that created it, None when anonymous); `close` is called once, at the
    end, and writes what is pending."""

    def save(self, task: Task, skill: str, dialect: str, push_configs: dict[str, Any], owner: str | None) -> None: ...

    def forget(self, task_id: str) -> None: ...

    def after_durable(self, callback: Callable[[], None]) -> None: ...

    def load(self, limit: int) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class SqlTaskStore:
    """The tasks in a database: an SQLite file in WAL mode, or PostgreSQL by URL. Writes are group-committed: from
    the event loop, `save` and `forget` only queue the row (the last write of a task wins); a writer thread commits
    whatever is queued in one transaction (one statement for all saves), then releases the `after_durable`
    callbacks waiting on it (`shared.runtime.group_commit`: outside an event loop a write commits at once; a commit
    that fails is retried, and the callbacks wait: nothing is announced that is not on disk)."""

    def __init__(self, url: str) -> None:
        self.engine = open_database(url, metadata, durable_commits=True)
        upsert = (postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(tasks)
        compiled = upsert.on_conflict_do_update(
            index_elements=["id"], set_={c.name: upsert.excluded[c.name] for c in tasks.columns if c.name != "id"}
        )
        self._upsert = DriverStatement(compiled, self.engine)  # compiled once: each batch goes to the driver as it is
        claim = (postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert)(channel_claims)
        self._claim = DriverStatement(  # a key claimed again after the window (not yet purged) takes the new time
            claim.on_conflict_do_update(index_elements=["ephemeral_key"], set_={"at": claim.excluded.at}), self.engine
        )
        # a forgotten task's delete, compiled once too: an expanding IN compiled per batch in the writer thread held
        # the interpreter lock the event loop needs, at every batch once the store is full (each new task forgets one)
        self._forget = DriverStatement(delete(tasks).where(tasks.c.id == bindparam("id")), self.engine)
        if "owner" not in {c["name"] for c in inspect(self.engine).get_columns(tasks.name)}:
            with self.engine.begin() as db:  # a database written before tasks had owners: its tasks stay anonymous
                db.execute(text(f"ALTER TABLE {tasks.name} ADD COLUMN owner VARCHAR(64)"))
        self._writes: GroupCommit[Pending] = GroupCommit(self.engine, "task-store-writer", Pending, self._commit)

    def save(self, task: Task, skill: str, dialect: str, push_configs: dict[str, Any], owner: str | None) -> None:
        row = {
            "id": task.id,
            "skill": skill,
            "dialect": dialect,
            "task": task.model_dump(mode="json", by_alias=True, exclude_none=True),
            "push_configs": push_configs,
            "updated_at": time.time(),
            "owner": owner,
        }
        self._queue(task.id, row)

    def forget(self, task_id: str) -> None:
        """Queued like a save, but nothing waits for it: a task left on disk by a crash is only an old task."""
        self._queue(task_id, None, awaited=False)

    def after_durable(self, callback: Callable[[], None]) -> None:
        self._writes.after_durable(callback)

    def claim_channel(self, claim: str, at: float) -> None:
        """Queued like a save (see `SqlReplayGuard`); nothing waits for it but what is written after it."""
        self._writes.write(lambda batch: batch.claims.append({"ephemeral_key": claim, "at": at}), False)

    def _queue(self, task_id: str, row: dict[str, Any] | None, awaited: bool = True) -> None:
        def put(batch: Pending) -> None:
            batch.tasks.pop(task_id, None)  # the last write of a task wins, in the order of writes
            batch.tasks[task_id] = row

        self._writes.write(put, awaited)

    def _commit(self, db: Connection, batch: Pending) -> None:
        rows = [self._upsert.params(row) for row in batch.tasks.values() if row is not None]
        gone = [task_id for task_id, row in batch.tasks.items() if row is None]
        with db.begin():
            if batch.claims:  # new claims, and those now outside the window purged
                db.execute(_purge_claims, {"before": time.time() - REPLAY_WINDOW_S})
                self._claim.execute(db, [self._claim.params(claim) for claim in batch.claims])
            if rows:
                self._upsert.execute(db, rows)
            if gone:
                self._forget.execute(db, [self._forget.params({"id": task_id}) for task_id in gone])

    def load(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` tasks, oldest first."""
        query = select(tasks).order_by(tasks.c.updated_at.desc()).limit(limit)
        with self.engine.begin() as db:
            rows = [dict(r._mapping) for r in db.execute(query)]
        return list(reversed(rows))

    def replay_guard(self, max_entries: int = MAX_SEEN_CHANNELS) -> SqlReplayGuard:
        """The end-to-end channels' replay guard, in the same database (it survives a restart)."""
        return SqlReplayGuard(self, max_entries)

    def close(self) -> None:
        """Writes what is pending, stops the writer, closes the database."""
        self._writes.close()
        self.engine.dispose()


class SqlReplayGuard:
    """The claims of channels opened within the replay window, on disk: a first envelope replayed after a
    restart is refused as before it. A claim is checked in memory (a `ReplayGuard`, given at start the claims still
    inside the window) and written with the task store's next commit, which comes no later than the one the answer
    to the envelope's task waits for: a claim a crash lost was never answered. At most `max_entries` are kept (a
    full guard refuses new channels rather than forget one inside the window); claims older than the window are
    purged as new ones are written. One contractor per database."""

    def __init__(self, store: SqlTaskStore, max_entries: int = MAX_SEEN_CHANNELS) -> None:
        self.store = store
        query = select(channel_claims.c.ephemeral_key, channel_claims.c.at).where(
            channel_claims.c.at >= time.time() - REPLAY_WINDOW_S
        )
        with store.engine.connect() as db:
            claims = [(key, at) for key, at in db.execute(query.order_by(channel_claims.c.at))]
        self.memory = ReplayGuard(max_entries).remembering(claims)

    def claim(self, claim: str) -> float:
        at = self.memory.claim(claim)
        self.store.claim_channel(claim, at)
        return at
