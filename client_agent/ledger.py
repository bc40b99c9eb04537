"""Settlement: a double-entry, append-only ledger with escrow.

Accounts: `client` (the client's money: negative = spent), `escrow`, `contractor:<id>`. On hire the client
reserves the most it will pay into escrow; on verified delivery escrow pays the contractor what it charged (never
more than reserved) and returns the rest; on failure escrow refunds the client in full. Each step happens at most
once per attempt, enforced by the database, so a retry or a restart never pays twice. Amounts are kept in
micro-dollars (integers), so balances add up exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client_agent.storage import Store
from shared.a2a.models import new_id

MICRO = 1_000_000
CLIENT = "client"
ESCROW = "escrow"


def micro(usd: float) -> int:
    return round(usd * MICRO)


def usd(micro_usd: int) -> float:
    return micro_usd / MICRO


def contractor_account(contractor_id: str) -> str:
    return f"contractor:{contractor_id}"


class Ledger:
    """`observe(kind, usd)` hears of every posting that happened: reserved, released (paid), refunded."""

    def __init__(self, store: Store, observe: Callable[[str, float], None] | None = None) -> None:
        self.store = store
        self.observe = observe or (lambda kind, amount: None)

    def reserve(self, subtask_id: str, attempt: int, contractor_id: str, amount_usd: float) -> bool:
        amount = micro(amount_usd)
        posted = self.store.post(
            new_id(),
            [(CLIENT, -amount), (ESCROW, amount)],
            "reserve",
            subtask_id,
            f"escrow for {contractor_id}",
            once=(attempt, "reserve"),
        )
        if posted:
            self.observe("reserved", usd(amount))
        return posted

    def release(
        self,
        subtask_id: str,
        attempt: int,
        contractor_id: str,
        reserved_usd: float,
        charged_usd: float,
        beyond_reservation: bool = False,
    ) -> float:
        """Pay the contractor what it charged, capped at the reservation unless `beyond_reservation` (a charge the
        price list allows, above a reservation the client estimated too low: the client pays the rest from its
        own account); returns what was paid."""
        reserved = micro(reserved_usd)
        paid = max(micro(charged_usd), 0) if beyond_reservation else min(max(micro(charged_usd), 0), reserved)
        postings = [(ESCROW, -reserved), (contractor_account(contractor_id), paid)]
        if reserved - paid:
            postings.append((CLIENT, reserved - paid))
        memo = f"verified delivery by {contractor_id}"
        if micro(charged_usd) > reserved:
            memo += (
                f"; charged {charged_usd:.6f}, " + ("above" if beyond_reservation else "capped at") + " the reservation"
            )
        posted = self.store.post(new_id(), postings, "release", subtask_id, memo, once=(attempt, "settle"))
        if posted:
            self.observe("reserved", usd(max(paid - reserved, 0)))  # what the client added to the reservation
            self.observe("released", usd(paid))
            self.observe("refunded", usd(max(reserved - paid, 0)))
        return usd(paid) if posted else 0.0

    def refund(self, subtask_id: str, attempt: int, reserved_usd: float, reason: str) -> bool:
        amount = micro(reserved_usd)
        posted = self.store.post(
            new_id(),
            [(ESCROW, -amount), (CLIENT, amount)],
            "refund",
            subtask_id,
            reason[:500],
            once=(attempt, "settle"),
        )
        if posted:
            self.observe("refunded", usd(amount))
        return posted

    def refund_open(self, subtask_id: str, reason: str) -> list[tuple[int, float]]:
        """Refund every reservation of the subtask that was never settled (after a crash): (attempt, USD) each."""
        refunded = []
        for attempt, amount in self.store.open_reservations(subtask_id):
            if self.refund(subtask_id, attempt, usd(amount), reason):
                refunded.append((attempt, usd(amount)))
        return refunded

    def view(self, limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        balances = {account: usd(total) for account, total in self.store.balances().items()}
        return {"entries": self.entries(limit, offset), "balances": balances, "total": round(sum(balances.values()), 6)}

    def entries(
        self, limit: int = 1000, offset: int = 0, subtask_ids: list[str] | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            {
                "seq": e["seq"],
                "transactionId": e["transaction_id"],
                "at": e["at"],
                "account": e["account"],
                "amountUsd": usd(e["amount_micro_usd"]),
                "subtaskId": e["subtask_id"],
                "kind": e["kind"],
                "memo": e["memo"],
            }
            for e in self.store.ledger_entries(limit, offset, subtask_ids, kind)
        ]
