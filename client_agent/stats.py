"""The exchange's running account: what the client spent (on work, and on learning: probes and agreement), what
wrong or missing answers lost, the quality of what it delivered, and the cost per correct answer.

Nothing here knows the truth. Quality is the user's feedback where given, else the competence estimate of the
agent that delivered, at the time it was chosen; value lost and cost per correct answer follow from those and say
so. The all-local figure is the cost model's estimate (the decision record's expected local cost: compute plus
the expected value lost to a bad local answer), labelled as such: a saving is measured only by running the same
work all-local (`coalesce market demo`, `coalesce market validate`)."""

from __future__ import annotations

from typing import Any

from client_agent.ledger import CLIENT, Ledger
from client_agent.quality import Spend
from client_agent.storage import Store


def market_stats(store: Store, ledger: Ledger, spend: Spend, limit: int = 5000) -> dict[str, Any]:
    series, spent, local, outsourced, explored, failed = [], 0.0, 0.0, 0, 0, 0
    lost, expected_right, delivered, graded, graded_sum, exploration_usd = 0.0, 0.0, 0, 0, 0.0, 0.0
    for sub in store.finished_subtasks(limit):
        state = sub["state"] or {}
        decision = state.get("decision") or {}
        value = state.get("valueUsd") or 0.0
        spent += (state.get("cost") or {}).get("actualUsd") or 0.0
        local += decision.get("expectedLocalCostUsd") or 0.0
        outsourced += decision.get("action") == "outsource"
        explored += bool(decision.get("exploration"))
        exploration_usd += decision.get("explorationCostUsd") or 0.0
        if sub["status"] != "completed":
            failed += 1
            lost += value
        else:
            delivered += 1
            feedback = state.get("feedback")
            quality = feedback["grade"] if feedback else (state.get("quality") or {}).get("quality", 0.5)
            if feedback:
                graded, graded_sum = graded + 1, graded_sum + feedback["grade"]
            expected_right += quality
            lost += (1.0 - quality) * value
        series.append({"at": sub["updated_at"], "spentUsd": round(spent, 6), "allLocalEstimateUsd": round(local, 6)})
    refunds = ledger.entries(limit=10_000, kind="refund")
    n = len(series)
    learning = spend.probe_usd
    total = spent + learning + lost
    return {
        "subtasks": n,
        "delivered": delivered,
        "failures": failed,
        "spentUsd": round(spent, 6),
        "probeUsd": round(learning, 6),
        "explorationCostUsd": round(exploration_usd, 6),
        "valueLostUsd": round(lost, 6),
        "totalCostUsd": round(total, 6),
        "quality": {
            "estimated": round(expected_right / delivered, 4) if delivered else None,
            "graded": round(graded_sum / graded, 4) if graded else None,
            "gradedSubtasks": graded,
            "basis": "user feedback where given, else the delivering agent's competence estimate",
        },
        "costPerCorrectUsd": round((spent + learning) / expected_right, 6) if expected_right > 0 else None,
        "allLocalEstimateUsd": round(local, 6),
        "savingEstimate": round(1 - total / local, 4) if local > 0 else None,
        "estimateBasis": "the cost model's expected all-local cost, not a measured run",
        "outsourcingShare": round(outsourced / n, 4) if n else None,
        "explorationShare": round(explored / n, 4) if n else None,
        "spend": spend.wire(),
        "refunds": len({e["transactionId"] for e in refunds}),
        "refundedUsd": round(sum(e["amountUsd"] for e in refunds if e["account"] == CLIENT), 6),
        "series": series[-1000:],
    }
