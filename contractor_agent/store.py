"""The contractor's tasks on disk (SQLAlchemy Core: an SQLite file in WAL mode by default, PostgreSQL by URL), so
that a restart loses no task: finished ones stay answerable, unfinished ones end as failed (never charged)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, delete, func, insert, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from shared.a2a.models import Task
from shared.runtime.database import DriverStatement, open_database
from shared.runtime.group_commit import GroupCommit
from shared.security.channel import MAX_SEEN_CHANNELS, REPLAY_WINDOW_S, replayed, too_many_channels

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
    Column("ephemeral_key", String(64), primary_key=True),
    Column("at", Float, nullable=False, index=True),
)


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
        if "owner" not in {c["name"] for c in inspect(self.engine).get_columns(tasks.name)}:
            with self.engine.begin() as db:  # a database written before tasks had owners: its tasks stay anonymous
                db.execute(text(f"ALTER TABLE {tasks.name} ADD COLUMN owner VARCHAR(64)"))
        self._writes: GroupCommit[dict[str, dict[str, Any] | None]] = GroupCommit(
            self.engine, "task-store-writer", dict, self._commit
        )  # a batch: task id -> its row, or None: forget it

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

    def _queue(self, task_id: str, row: dict[str, Any] | None, awaited: bool = True) -> None:
        def put(batch: dict[str, dict[str, Any] | None]) -> None:
            batch.pop(task_id, None)  # the last write of a task wins, in the order of writes
            batch[task_id] = row

        self._writes.write(put, awaited)

    def _commit(self, db: Connection, batch: dict[str, dict[str, Any] | None]) -> None:
        rows = [self._upsert.params(row) for row in batch.values() if row is not None]
        gone = [task_id for task_id, row in batch.items() if row is None]
        with db.begin():
            if rows:
                self._upsert.execute(db, rows)
            if gone:
                db.execute(delete(tasks).where(tasks.c.id.in_(gone)))

    def load(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` tasks, oldest first."""
        query = select(tasks).order_by(tasks.c.updated_at.desc()).limit(limit)
        with self.engine.begin() as db:
            rows = [dict(r._mapping) for r in db.execute(query)]
        return list(reversed(rows))

    def replay_guard(self) -> SqlReplayGuard:
        """The end-to-end channels' replay guard, in the same database (it survives a restart)."""
        return SqlReplayGuard(self.engine)

    def close(self) -> None:
        """Writes what is pending, stops the writer, closes the database."""
        self._writes.close()
        self.engine.dispose()


class SqlReplayGuard:
    """The ephemeral keys of channels opened within the replay window, on disk: a first envelope replayed after a
    restart is refused as before it. Claims older than the window are purged as new ones come; at most
    `max_entries` are kept (a full guard refuses new channels rather than forget one inside the window). The
    count is kept by this process (one contractor per database), read from the table at start."""

    def __init__(self, engine: Engine, max_entries: int = MAX_SEEN_CHANNELS) -> None:
        self.engine = engine
        self.max_entries = max_entries
        with engine.connect() as db:
            self._entries = db.execute(select(func.count()).select_from(channel_claims)).scalar_one()

    def claim(self, ephemeral_key: str) -> None:
        now = time.time()
        try:
            with self.engine.begin() as db:
                purged = db.execute(delete(channel_claims).where(channel_claims.c.at < now - REPLAY_WINDOW_S))
                self._entries = max(self._entries - purged.rowcount, 0)
                if self._entries >= self.max_entries:
                    known = db.execute(
                        select(channel_claims.c.at).where(channel_claims.c.ephemeral_key == ephemeral_key)
                    )
                    raise replayed() if known.first() is not None else too_many_channels(self.max_entries)
                db.execute(insert(channel_claims).values(ephemeral_key=ephemeral_key, at=now))
        except IntegrityError:
            raise replayed() from None
        self._entries += 1
