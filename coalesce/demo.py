"""`coalesce market demo`: real tasks of the paper's four types through a running market, each answer graded
against the data set's ground truth.

Money is counted the fair way (see README "The local market"): what the client spent, plus the value of every
subtask it did not deliver verified. All-local is the same count for the client doing everything itself.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from client_agent.models import TaskSubmission
from coalesce.client import Exchange, Task
from coalesce.workload import TASK_TYPES, VALUE_USD, Case, case, dataset, grade

DATASET_OF = {
    "financial-document-analysis": "documents",
    "risk-assessment": "risk",
    "portfolio-optimisation": "portfolio",
    "sentiment-analysis": "sentiment",
}


def run_task(exchange: Exchange, body: dict[str, Any], timeout_s: float = 900.0) -> Task:
    """The task through the exchange, once it is done."""
    return exchange.wait(exchange.submit(TaskSubmission.model_validate(body)).id, timeout_s)


@dataclass
class Row:
    """One subtask's outcome, graded."""

    kind: str
    case: str
    action: str
    where: str
    reason: str
    exploration: bool
    estimated_usd: float
    actual_usd: float
    local_estimate_usd: float
    seconds: float
    verified: bool
    grade: float

    @property
    def lost_usd(self) -> float:
        """The value a wrong or missing answer loses: all of it undelivered, the ungraded share delivered."""
        return VALUE_USD[self.kind] * (1.0 - self.grade)


def graded_rows(result: Task, cases: list[Case]) -> list[Row]:
    rows = []
    for sub, item in zip(result.subtasks, cases, strict=True):
        decision = sub.decision or {}
        verified = sub.status == "completed" and bool((sub.verification or {}).get("passed"))
        rows.append(
            Row(
                kind=item.kind,
                case=item.name,
                action=decision.get("action", "-"),
                where=sub.where or "-",
                reason=decision.get("reason", sub.reason or ""),
                exploration=bool(decision.get("exploration")),
                estimated_usd=sub.cost.get("estimatedUsd") or 0.0,
                actual_usd=sub.cost.get("actualUsd") or 0.0,
                local_estimate_usd=decision.get("expectedLocalCostUsd") or 0.0,
                seconds=sum(a.get("seconds", 0.0) for a in sub.attempts),
                verified=verified,
                grade=grade(item.kind, item.truth, sub.artifacts) if verified else 0.0,
            )
        )
    return rows


# ---------------------------------------------------------------- the demo


def demo_tasks() -> Iterable[tuple[str, dict[str, Any], list[Case]]]:
    """One task per type, with every case of its data set as a subtask."""
    for kind in TASK_TYPES:
        cases = [case(kind, i) for i in range(len(dataset(DATASET_OF[kind])))]
        body = {
            "description": f"{kind.replace('-', ' ')} of the fund's data set",
            "subtasks": [c.subtask for c in cases],
            "budget_usd": 20.0,
        }
        yield kind, body, cases


def print_rows(rows: list[Row], names: dict[str, str], out: Callable[[str], None]) -> None:
    out(f"  {'case':<30} {'decision':<9} {'done by':<20} {'est $':>8} {'paid $':>8} {'sec':>5} {'check':<5} truth")
    for row in rows:
        out(
            f"  {row.case[:30]:<30} {row.action:<9} {names.get(row.where, row.where)[:20]:<20} "
            f"{row.estimated_usd:>8.5f} {row.actual_usd:>8.5f} {row.seconds:>5.1f} "
            f"{'ok' if row.verified else 'FAIL':<5} {row.grade:.2f}"
        )
        out(f"      why: {row.reason[:150]}")


@dataclass(frozen=True)
class Totals:
    """One run of the demo set, counted honestly: what was spent, what wrong or missing answers lost (their value
    times the share the ground truth says is wrong), and the cost of each correct answer."""

    label: str
    subtasks: int
    spent_usd: float
    lost_usd: float
    correct: float  # the sum of the grades: how many answers were right
    seconds: float
    rows: tuple[Row, ...] = ()

    @property
    def total_usd(self) -> float:
        return self.spent_usd + self.lost_usd

    @property
    def quality(self) -> float:
        return self.correct / self.subtasks if self.subtasks else 0.0

    @property
    def cost_per_correct_usd(self) -> float:
        return self.spent_usd / self.correct if self.correct else math.inf

    def line(self) -> str:
        return (
            f"  {self.label:<28} spent ${self.spent_usd:>9.5f}  quality {self.quality:.2f}  "
            f"value lost ${self.lost_usd:>7.3f}  total ${self.total_usd:>8.4f}  "
            f"per correct answer ${self.cost_per_correct_usd:.5f}  ({self.seconds:.0f} s)"
        )


def totals(label: str, rows: list[Row], seconds: float) -> Totals:
    spent, lost, correct = sum(r.actual_usd for r in rows), sum(r.lost_usd for r in rows), sum(r.grade for r in rows)
    return Totals(label, len(rows), spent, lost, correct, seconds, tuple(rows))


def run_demo_set(exchange: Exchange, names: dict[str, str], strategy: str | None, out: Callable[[str], None]) -> Totals:
    """Every demo task through the client (`strategy` overrides its own), printed and graded."""
    everything: list[Row] = []
    started = time.perf_counter()
    for kind, body, cases in demo_tasks():
        out(f"\n{kind}: {len(cases)} subtasks" + (f" ({strategy})" if strategy else ""))
        began = time.perf_counter()
        rows = graded_rows(run_task(exchange, {**body, "strategy": strategy} if strategy else body), cases)
        print_rows(rows, names, out)
        out(f"  ({time.perf_counter() - began:.1f} s)")
        everything.extend(rows)
    return totals(strategy or "the market", everything, time.perf_counter() - started)


def demo(client_url: str, out: Callable[[str], None] = print) -> tuple[Totals, Totals]:
    """The demo set through the market, then the same set all-local on the same client (its own model and its
    own compute): both graded against the ground truth and counted the same way."""
    with Exchange(client_url, timeout_s=60) as exchange:
        names = {c.id: c.name for c in exchange.contractors()}
        names["local"] = "the client itself"
        market = run_demo_set(exchange, names, None, out)
        time.sleep(2.0)  # the last probes settle
        stats = exchange.stats()
        market = dataclasses.replace(market, spent_usd=market.spent_usd + stats["probeUsd"])  # learning is spending
        alone = run_demo_set(exchange, names, "local-only", out)
        ledger = exchange.ledger()
    out("\nboth runs graded against the ground truth (value lost = value × the share of the answer that is wrong):")
    out(market.line())
    out(alone.line())
    out(f"  the market's spend includes ${stats['probeUsd']:.5f} of gold probes ({stats['spend']['probes']} probes)")
    if alone.total_usd > 0:
        out(f"  saving against all-local, measured: {1 - market.total_usd / alone.total_usd:.1%} of the total cost")
    out(f"ledger balances: {json.dumps({k: round(v, 6) for k, v in ledger['balances'].items()})}")
    return market, alone
