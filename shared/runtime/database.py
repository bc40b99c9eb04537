"""Opening a database: SQLite (WAL mode, a busy timeout) by default, any SQLAlchemy URL (PostgreSQL) otherwise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine

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
