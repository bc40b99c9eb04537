"""The contractor's tasks on disk (SQLAlchemy Core: an SQLite file in WAL mode by default, PostgreSQL by URL), so
that a restart loses no task: finished ones stay answerable, unfinished ones end as failed (never charged)."""

from __future__ import annotations

import time
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, delete, func, insert, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from shared.a2a.models import Task
from shared.runtime.database import open_database
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
    """Where a contractor's tasks persist. `save` is durable when it returns (a task is written before its new state
    is announced); `load` gives the newest `limit` tasks, oldest first, as rows of `id`, `skill`, `dialect`, `task`
    (the task as JSON), `push_configs` and `owner` (the caller that created it, None when anonymous); `forget` drops
    a task; `close` is called once, at the end."""

    def save(self, task: Task, skill: str, dialect: str, push_configs: dict[str, Any], owner: str | None) -> None: ...

    def load(self, limit: int) -> list[dict[str, Any]]: ...

    def forget(self, task_id: str) -> None: ...

    def close(self) -> None: ...


class SqlTaskStore:
    """The tasks in a database: an SQLite file in WAL mode, or PostgreSQL by URL."""

    def __init__(self, url: str) -> None:
        self.engine = open_database(url, metadata)
        self._upsert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        if "owner" not in {c["name"] for c in inspect(self.engine).get_columns(tasks.name)}:
            with self.engine.begin() as db:  # a database written before tasks had owners: its tasks stay anonymous
                db.execute(text(f"ALTER TABLE {tasks.name} ADD COLUMN owner VARCHAR(64)"))

    def save(self, task: Task, skill: str, dialect: str, push_configs: dict[str, Any], owner: str | None) -> None:
        values = {
            "id": task.id,
            "skill": skill,
            "dialect": dialect,
            "task": task.model_dump(mode="json", by_alias=True, exclude_none=True),
            "push_configs": push_configs,
            "updated_at": time.time(),
            "owner": owner,
        }
        statement = self._upsert(tasks).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={k: v for k, v in values.items() if k != "id"}
        )
        with self.engine.begin() as db:
            db.execute(statement)

    def load(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` tasks, oldest first."""
        query = select(tasks).order_by(tasks.c.updated_at.desc()).limit(limit)
        with self.engine.begin() as db:
            rows = [dict(r._mapping) for r in db.execute(query)]
        return list(reversed(rows))

    def forget(self, task_id: str) -> None:
        with self.engine.begin() as db:
            db.execute(delete(tasks).where(tasks.c.id == task_id))

    def replay_guard(self) -> SqlReplayGuard:
        """The end-to-end channels' replay guard, in the same database (it survives a restart)."""
        return SqlReplayGuard(self.engine)

    def close(self) -> None:
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
