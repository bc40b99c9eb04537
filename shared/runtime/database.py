"""Opening a database: SQLite (WAL mode, a busy timeout) by default, any SQLAlchemy URL (PostgreSQL) otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, MetaData, create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.dml import UpdateBase

from shared.runtime import jsonio


def _sqlite_pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    def pragmas(dbapi_connection: Any, record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    return pragmas


def open_database(url: str, metadata: MetaData, durable_commits: bool = False) -> Engine:
    """An engine for `url` (`sqlite:///path.db` by default) with the tables created. SQLite: a commit survives the
    process (synchronous=NORMAL in WAL mode); `durable_commits` makes it survive the machine too (FULL: the log is
    synced at every commit; for writes batched into few commits)."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != url and not path.startswith(":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 5}, json_serializer=jsonio.dumps_text
        )
        event.listen(engine, "connect", _sqlite_pragmas("FULL" if durable_commits else "NORMAL"))
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, json_serializer=jsonio.dumps_text)
    metadata.create_all(engine)
    return engine


class DriverStatement:
    """An INSERT, UPDATE or DELETE compiled once for the engine's dialect, its rows sent to the database driver as they
    are: no statement is built, hashed or compiled per write (SQLAlchemy's per-statement machinery holds the
    interpreter lock an event loop needs). `params` turns a row (a dict by column name) into what the driver takes:
    JSON columns as text, and a tuple in the statement's order for a positional driver (SQLite)."""

    def __init__(self, statement: UpdateBase, engine: Engine, columns: list[str] | None = None) -> None:
        """`columns`: those a row gives (default: every column of the table)."""
        compiled = statement.compile(dialect=engine.dialect, column_keys=columns)
        self.sql = compiled.string
        self._order = list(compiled.positiontup or ()) if compiled.positional else None
        self._json = [c.name for c in statement.table.columns if isinstance(c.type, JSON)]

    def params(self, row: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        values = {**row, **{name: jsonio.dumps_text(row[name]) for name in self._json if name in row}}
        return values if self._order is None else tuple(values[name] for name in self._order)

    def execute(self, db: Connection, params: list[tuple[Any, ...] | dict[str, Any]]) -> None:
        """The statement for every row of `params` (rows already through `params`)."""
        db.exec_driver_sql(self.sql, params)
