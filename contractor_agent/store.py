"""The contractor's tasks on disk (SQLAlchemy Core: an SQLite file in WAL mode by default, PostgreSQL by URL), so
that a restart loses no task: finished ones stay answerable, unfinished ones end as failed (never charged)."""

from __future__ import annotations

import time
from typing import Any, Protocol

from sqlalchemy import JSON, Column, Float, MetaData, String, Table, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from shared.a2a.models import Task
from shared.runtime.database import open_database

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
)


class TaskStore(Protocol):
    """Where a contractor's tasks persist. `save` is durable when it returns (a task is written before its new state
    is announced); `load` gives the newest `limit` tasks, oldest first, as rows of `id`, `skill`, `dialect`, `task`
    (the task as JSON) and `push_configs`; `forget` drops a task; `close` is called once, at the end."""

    def save(self, task: Task, skill: str, dialect: str, push_configs: dict[str, Any]) -> None: ...

    def load(self, limit: int) -> list[dict[str, Any]]: ...

    def forget(self, task_id: str) -> None: ...

    def close(self) -> None: ...


class SqlTaskStore:
    """The tasks in a database: an SQLite file in WAL mode, or PostgreSQL by URL."""

    def __init__(self, url: str) -> None:
        self.engine = open_database(url, metadata)
        self._upsert = postgresql_insert if self.engine.dialect.name == "postgresql" else sqlite_insert

    def save(self, task: Task, skill: str, dialect: str, push_configs: dict[str, Any]) -> None:
        values = {
            "id": task.id,
            "skill": skill,
            "dialect": dialect,
            "task": task.model_dump(mode="json", by_alias=True, exclude_none=True),
            "push_configs": push_configs,
            "updated_at": time.time(),
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

    def close(self) -> None:
        self.engine.dispose()
