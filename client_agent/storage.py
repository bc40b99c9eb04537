"""The client's persistent state through SQLAlchemy: an SQLite file by default (WAL mode), any SQLAlchemy URL
(PostgreSQL for deployments that outgrow one machine). Tasks, events, the registry, the ledger and the decision
engine's learned state survive a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import Executable

from shared.runtime.database import DriverStatement, open_database
from shared.runtime.turn_batch import TurnBatch

metadata = MetaData()

contractors = Table(
    "contractors",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("card_url", Text, nullable=False, index=True),  # where it was last registered (not who it is)
    Column("name", Text, nullable=False),
    Column("card", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # active, unreachable, removed
    Column("failures", Integer, nullable=False, default=0),
    Column("signing_key", String(64), nullable=True),  # the pinned card-signing key's thumbprint
    Column("price_usd", Float, nullable=True),  # the operator's price per task, for a card that publishes none
    Column("registered_at", Float, nullable=False),
    Column("refreshed_at", Float, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("idempotency_key", String(200), unique=True),
    Column("status", String(16), nullable=False),
    Column("request", JSON, nullable=False),
    Column("result", JSON),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

subtasks = Table(
    "subtasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("task_id", String(64), nullable=False, index=True),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("state", JSON, nullable=False),  # decision record, attempts, costs, artifacts, verification
    Column("updated_at", Float, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("data", JSON, nullable=False),
)

ledger = Table(
    "ledger",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("transaction_id", String(64), nullable=False, index=True),
    Column("at", Float, nullable=False),
    Column("account", String(128), nullable=False, index=True),
    Column("amount_micro_usd", Integer, nullable=False),  # + credit to the account, − debit; a transaction sums to 0
    Column("subtask_id", String(64), index=True),
    Column("kind", String(16), nullable=False),  # reserve, release, refund
    Column("memo", Text),
)

settlements = Table(  # one reserve and one settlement (release or refund) per escrow: exactly once
    "settlements",
    metadata,
    Column("subtask_id", String(64), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("transaction_id", String(64), nullable=False),
    UniqueConstraint("subtask_id", "attempt", "kind"),
)

engine_state = Table(
    "engine_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)


# the statements a task runs many times, built once (their compiled form is cached by SQLAlchemy; a statement built
# per call is hashed again each time)
_task_by_id = select(tasks).where(tasks.c.id == bindparam("task_id"))
_subtasks_of = select(subtasks).where(subtasks.c.task_id == bindparam("task_id")).order_by(subtasks.c.position)
_task_status = select(tasks.c.status).where(tasks.c.id == bindparam("task_id"))
_update_task = update(tasks).where(tasks.c.id == bindparam("task_id"))
_update_subtask = update(subtasks).where(subtasks.c.id == bindparam("subtask_id"))
_settled = select(settlements.c.transaction_id).where(
    settlements.c.subtask_id == bindparam("subtask_id"),
    settlements.c.attempt == bindparam("attempt"),
    settlements.c.kind == bindparam("step"),
)


def _execute(db: Connection, statement: Executable, values: dict[str, Any] | list[dict[str, Any]]) -> None:
    db.execute(statement, values)


def row(mapping: Any) -> dict[str, Any]:
    return dict(mapping._mapping) if mapping is not None else {}


class Store:
    """Small, named transactions over the tables above. A task's progress (its subtasks, their states, its status,
    its events) is written at the end of the event loop's turn, with everything else written in that turn
    (`shared.runtime.turn_batch`); every other transaction has what is pending first in it, so reads see every write
    made before them. `after_stored` runs a callback once the writes made so far are committed."""

    def __init__(self, url: str) -> None:
        self.engine = open_database(url, metadata)
        _contractors_keyed_by_key(self.engine)
        self._insert_event = DriverStatement(insert(events), self.engine)  # the most frequent writes
        self._insert_settlement = DriverStatement(insert(settlements), self.engine)
        posted = [c.name for c in ledger.columns if c is not ledger.c.seq]  # the database numbers postings
        self._insert_posting = DriverStatement(insert(ledger), self.engine, posted)
        unfinished = [c.name for c in tasks.columns if c is not tasks.c.result]  # a task starts without a result
        self._insert_task = DriverStatement(insert(tasks), self.engine, unfinished)
        self._update_subtask = DriverStatement(_update_subtask, self.engine, ["status", "state", "updated_at"])
        self._task_updates: dict[tuple[str, ...], DriverStatement] = {}  # by the columns set
        self._turn = TurnBatch(self.engine)
        self.after_stored = self._turn.after

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._turn.joined() as connection:
            yield connection

    def close(self) -> None:
        self._turn.flush()
        self.engine.dispose()

    # ------------------------------------------------------------ registry

    def upsert_contractor(
        self,
        contractor_id: str,
        card_url: str,
        name: str,
        card: dict[str, Any],
        signing_key: str | None = None,
        price_usd: float | None = None,
    ) -> bool:
        """True when the contractor is new. A known one may have moved: its address follows `card_url`."""
        now = time.time()
        values = {
            "card_url": card_url,
            "name": name,
            "card": card,
            "status": "active",
            "failures": 0,
            "signing_key": signing_key,
            "price_usd": price_usd,
            "refreshed_at": now,
        }
        with self.transaction() as db:
            existing = db.execute(select(contractors.c.id).where(contractors.c.id == contractor_id)).first()
            if existing:
                db.execute(update(contractors).where(contractors.c.id == contractor_id).values(**values))
                return False
            db.execute(insert(contractors).values(id=contractor_id, registered_at=now, **values))
            return True

    def contractor_at(self, card_url: str) -> dict[str, Any] | None:
        """The contractor that holds this address now (not removed, not moved away)."""
        query = select(contractors).where(
            contractors.c.card_url == card_url, contractors.c.status.not_in(("removed", "moved"))
        )
        with self.transaction() as db:
            found = db.execute(query.order_by(contractors.c.refreshed_at.desc())).first()
        return row(found) if found else None

    def contractors_pinned_to(self, keys: list[str]) -> list[dict[str, Any]]:
        """The records whose pinned signing key is one of `keys` (who it is, wherever it is now), the first registered
        first. More than one: a registry written when contractors were keyed by address."""
        query = select(contractors).where(contractors.c.signing_key.in_(keys))
        with self.transaction() as db:
            return [row(r) for r in db.execute(query.order_by(contractors.c.registered_at))]

    def contractors(self, include_removed: bool = False) -> list[dict[str, Any]]:
        query = select(contractors).order_by(contractors.c.registered_at)
        if not include_removed:
            query = query.where(contractors.c.status != "removed")
        with self.transaction() as db:
            return [row(r) for r in db.execute(query)]

    def contractor(self, contractor_id: str) -> dict[str, Any] | None:
        with self.transaction() as db:
            found = db.execute(select(contractors).where(contractors.c.id == contractor_id)).first()
        return row(found) if found else None

    def set_contractor_status(self, contractor_id: str, status: str, failures: int | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        if failures is not None:
            values["failures"] = failures
        with self.transaction() as db:
            db.execute(update(contractors).where(contractors.c.id == contractor_id).values(**values))

    # ------------------------------------------------------------ tasks

    def create_task(self, task_id: str, request: dict[str, Any], idempotency_key: str | None) -> None:
        now = time.time()
        task = {
            "id": task_id,
            "idempotency_key": idempotency_key,
            "status": "submitted",
            "request": request,
            "created_at": now,
            "updated_at": now,
        }
        with self.transaction() as db:
            self._insert_task.execute(db, [self._insert_task.params(task)])

    def task_by_key(self, idempotency_key: str) -> dict[str, Any] | None:
        with self.transaction() as db:
            found = db.execute(select(tasks).where(tasks.c.idempotency_key == idempotency_key)).first()
        return row(found) if found else None

    def task(self, task_id: str) -> dict[str, Any] | None:
        with self.transaction() as db:
            found = db.execute(_task_by_id, {"task_id": task_id}).first()
            if found is None:
                return None
            parts = db.execute(_subtasks_of, {"task_id": task_id})
            return {**row(found), "subtasks": [row(p) for p in parts]}

    def task_status(self, task_id: str) -> str | None:
        """The task's status alone (None: no such task)."""
        with self.transaction() as db:
            return db.execute(_task_status, {"task_id": task_id}).scalar()

    def tasks(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        with self.transaction() as db:
            query = select(tasks).order_by(tasks.c.created_at.desc()).limit(limit).offset(offset)
            return [row(r) for r in db.execute(query)]

    def unfinished_tasks(self) -> list[str]:
        """Ids of tasks that never reached a final status (a crash or a kill stopped them)."""
        with self.transaction() as db:
            query = select(tasks.c.id).where(tasks.c.status.not_in(("completed", "failed", "canceled")))
            return [r[0] for r in db.execute(query.order_by(tasks.c.created_at))]

    def finished_subtasks(self, limit: int = 5000) -> list[dict[str, Any]]:
        """The latest finished subtasks, oldest first."""
        query = (
            select(subtasks)
            .where(subtasks.c.status.in_(("completed", "failed")))
            .order_by(subtasks.c.updated_at.desc())
            .limit(limit)
        )
        with self.transaction() as db:
            return [row(r) for r in reversed(list(db.execute(query)))]

    def set_task(self, task_id: str, **values: Any) -> None:
        columns = (*values, "updated_at")
        statement = self._task_updates.get(columns)
        if statement is None:
            statement = self._task_updates[columns] = DriverStatement(_update_task, self.engine, list(columns))
        update = statement.params({"task_id": task_id, "updated_at": time.time(), **values})
        self._turn.write(lambda db: statement.execute(db, [update]))

    def add_subtasks(self, task_id: str, specs: list[tuple[str, dict[str, Any]]]) -> None:
        now = time.time()
        rows = [
            {
                "id": subtask_id,
                "task_id": task_id,
                "position": position,
                "status": "pending",
                "spec": spec,
                "state": {},
                "updated_at": now,
            }
            for position, (subtask_id, spec) in enumerate(specs)
        ]
        self._turn.write(lambda db: _execute(db, insert(subtasks), rows))

    def set_subtask(self, subtask_id: str, status: str, state: dict[str, Any]) -> None:
        update = self._update_subtask.params(
            {"subtask_id": subtask_id, "status": status, "state": state, "updated_at": time.time()}
        )
        self._turn.write(lambda db: self._update_subtask.execute(db, [update]))

    # ------------------------------------------------------------ events

    def append_event(self, seq: int, task_id: str, kind: str, data: dict[str, Any], at: float) -> None:
        """The caller numbers events: one client per database, `last_event_seq` at start, then one more each."""
        row = self._insert_event.params({"seq": seq, "task_id": task_id, "at": at, "kind": kind, "data": data})
        self._turn.write(lambda db: self._insert_event.execute(db, [row]))

    def last_event_seq(self) -> int:
        """The position of the latest event of any task (0: none)."""
        with self.transaction() as db:
            return int(db.execute(select(func.max(events.c.seq))).scalar() or 0)

    def events(self, task_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        with self.transaction() as db:
            query = (
                select(events)
                .where(events.c.task_id == task_id, events.c.seq > after)
                .order_by(events.c.seq)
                .limit(limit)
            )
            return [row(r) for r in db.execute(query)]

    # ------------------------------------------------------------ ledger

    def post(
        self,
        transaction_id: str,
        postings: list[tuple[str, int]],
        kind: str,
        subtask_id: str,
        memo: str,
        once: tuple[int, str],
    ) -> bool:
        """Append one balanced transaction, at most once per (subtask, attempt, step) where `once` is
        (attempt, step) and step is `reserve` or `settle`. False when that step was already taken."""
        if sum(amount for _, amount in postings) != 0:
            raise ValueError("a transaction must balance")
        now = time.time()
        attempt, step = once
        with self.transaction() as db:
            done = db.execute(_settled, {"subtask_id": subtask_id, "attempt": attempt, "step": step}).first()
            if done:
                return False
            settlement = {"subtask_id": subtask_id, "attempt": attempt, "kind": step, "transaction_id": transaction_id}
            self._insert_settlement.execute(db, [self._insert_settlement.params(settlement)])
            self._insert_posting.execute(
                db,
                [
                    self._insert_posting.params(
                        {
                            "transaction_id": transaction_id,
                            "at": now,
                            "account": account,
                            "amount_micro_usd": amount,
                            "subtask_id": subtask_id,
                            "kind": kind,
                            "memo": memo,
                        }
                    )
                    for account, amount in postings
                ],
            )
        return True

    def open_reservations(self, subtask_id: str) -> list[tuple[int, int]]:
        """(attempt, micro-USD in escrow) of each reservation of the subtask that was never settled."""
        with self.transaction() as db:
            steps = db.execute(
                select(settlements.c.attempt, settlements.c.kind, settlements.c.transaction_id).where(
                    settlements.c.subtask_id == subtask_id
                )
            ).all()
            settled = {attempt for attempt, kind, _ in steps if kind == "settle"}
            open_ = []
            for attempt, kind, transaction in steps:
                if kind == "reserve" and attempt not in settled:
                    amount = db.execute(
                        select(func.sum(ledger.c.amount_micro_usd)).where(
                            ledger.c.transaction_id == transaction, ledger.c.account == "escrow"
                        )
                    ).scalar()
                    open_.append((attempt, int(amount or 0)))
        return open_

    def reserved_subtasks(self, prefix: str) -> list[str]:
        """Ids of subtasks whose id starts with `prefix` that have a reservation (probes: `probe-`)."""
        with self.transaction() as db:
            rows = db.execute(
                select(settlements.c.subtask_id)
                .where(settlements.c.subtask_id.startswith(prefix), settlements.c.kind == "reserve")
                .distinct()
            ).all()
        return [row[0] for row in rows]

    def last_attempt(self, subtask_id: str) -> int:
        with self.transaction() as db:
            found = db.execute(
                select(func.max(settlements.c.attempt)).where(settlements.c.subtask_id == subtask_id)
            ).scalar()
        return int(found or 0)

    def ledger_entries(
        self, limit: int = 1000, offset: int = 0, subtask_ids: list[str] | None = None, kind: str | None = None
    ) -> list[dict]:
        query = select(ledger).order_by(ledger.c.seq).limit(limit).offset(offset)
        if subtask_ids is not None:
            query = query.where(ledger.c.subtask_id.in_(subtask_ids))
        if kind is not None:
            query = query.where(ledger.c.kind == kind)
        with self.transaction() as db:
            return [row(r) for r in db.execute(query)]

    def balances(self) -> dict[str, int]:
        with self.transaction() as db:
            query = select(ledger.c.account, func.sum(ledger.c.amount_micro_usd)).group_by(ledger.c.account)
            return {account: int(total) for account, total in db.execute(query)}

    # ------------------------------------------------------------ learned state

    def save_state(self, name: str, state: dict[str, Any]) -> None:
        now = time.time()
        with self.transaction() as db:
            updated = db.execute(
                update(engine_state).where(engine_state.c.name == name).values(state=state, updated_at=now)
            )
            if updated.rowcount == 0:
                db.execute(insert(engine_state).values(name=name, state=state, updated_at=now))

    def load_state(self, name: str) -> dict[str, Any] | None:
        with self.transaction() as db:
            found = db.execute(select(engine_state.c.state).where(engine_state.c.name == name)).first()
        return found[0] if found else None


def _contractors_keyed_by_key(engine: Engine) -> None:
    """Bring a registry written when contractors were keyed by address up to date: the address is no longer unique
    (an agent is who its key says it is; two records may have known the same address) and the operator's price
    has a column. SQLite cannot drop a constraint, so its table is copied into the current definition."""
    found = inspect(engine)
    columns = {c["name"] for c in found.get_columns(contractors.name)}
    unique = [u for u in found.get_unique_constraints(contractors.name) if u["column_names"] == ["card_url"]]
    with engine.begin() as db:
        if "price_usd" not in columns:
            db.execute(text(f"ALTER TABLE {contractors.name} ADD COLUMN price_usd FLOAT"))
        if not unique:
            return
        if engine.dialect.name != "sqlite":
            for constraint in unique:
                db.execute(text(f'ALTER TABLE {contractors.name} DROP CONSTRAINT "{constraint["name"]}"'))
            return
        db.execute(text(f"ALTER TABLE {contractors.name} RENAME TO {contractors.name}_by_address"))
        for index in contractors.indexes:
            db.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
        contractors.create(db)
        names = ", ".join(c.name for c in contractors.columns)
        db.execute(text(f"INSERT INTO {contractors.name} ({names}) SELECT {names} FROM {contractors.name}_by_address"))
        db.execute(text(f"DROP TABLE {contractors.name}_by_address"))
