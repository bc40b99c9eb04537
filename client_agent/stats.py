"""The exchange's running account, for the dashboard: per finished subtask what it cost against what running it
locally was estimated to cost (the all-local baseline: the decision record's expected local cost), and totals."""

from __future__ import annotations

from typing import Any

from client_agent.ledger import CLIENT, Ledger
from client_agent.storage import Store


def market_stats(store: Store, ledger: Ledger, limit: int = 5000) -> dict[str, Any]:
    series, spent, local, outsourced, explored, failed = [], 0.0, 0.0, 0, 0, 0
    for sub in store.finished_subtasks(limit):
        state = sub["state"] or {}
        decision = state.get("decision") or {}
        spent += (state.get("cost") or {}).get("actualUsd") or 0.0
        local += decision.get("expectedLocalCostUsd") or 0.0
        outsourced += decision.get("action") == "outsource"
        explored += bool(decision.get("exploration"))
        failed += sub["status"] == "failed"
        series.append({"at": sub["updated_at"], "spentUsd": round(spent, 6), "allLocalUsd": round(local, 6)})
    refunds = ledger.entries(limit=10_000, kind="refund")
    n = len(series)
    return {
        "subtasks": n,
        "spentUsd": round(spent, 6),
        "allLocalUsd": round(local, 6),
        "saving": round(1 - spent / local, 4) if local > 0 else None,
        "outsourcingShare": round(outsourced / n, 4) if n else None,
        "explorationShare": round(explored / n, 4) if n else None,
        "failures": failed,
        "refunds": len({e["transactionId"] for e in refunds}),
        "refundedUsd": round(sum(e["amountUsd"] for e in refunds if e["account"] == CLIENT), 6),
        "series": series[-1000:],
    }
