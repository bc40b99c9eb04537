"""One simulation run: a market, hour by hour, with every strategy deciding the same tasks side by side.

Each strategy is the real `shared.decision.DecisionEngine` (the reference code's rule is the one exception: it is
re-implemented in `simulator.reference` to be compared with ours). Each learns only from its own hires: the
success or failure of each contractor on each task type, decayed as in eq. (14), the record behind eq. (18),
and the weights of eq. (13).

Scoring is honest: cost reduction = (all-local cost − actual cost) / all-local cost over every task, losses and
redos included; likewise time savings; regret = (actual cost − the oracle's cost) / all-local cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.decision import (
    Candidates,
    Choice,
    DecisionConfig,
    DecisionEngine,
    LocalOption,
    MarketSignals,
    Problem,
    make_strategy,
    outcome_reward,
)
from shared.reputation import ReputationConfig, decay_factor
from shared.skills import CompatibilityWeights, compatibility
from simulator.market import TASK_TYPES, Market, Step
from simulator.reference import ReferenceRule

STEP_S = 3600.0


@dataclass(frozen=True)
class RunConfig:
    name: str
    market: str = "paper"
    clients: int = 15
    contractors: int = 30
    days: float = 7
    seed: int = 0
    run: int = 0
    strategies: tuple[str, ...] = (
        "local-only",
        "paper-deterministic",
        "paper-epsilon-greedy",
        "ucb1",
        "thompson",
        "oracle",
    )
    decision: dict[str, Any] = field(default_factory=dict)  # DecisionConfig overrides (sensitivity sweeps)
    compatibility: dict[str, Any] = field(default_factory=dict)  # CompatibilityWeights overrides


@dataclass
class Tally:
    cost: float = 0.0
    time: float = 0.0
    local_cost: float = 0.0
    local_time: float = 0.0
    tasks: int = 0
    hires: int = 0
    explorations: int = 0
    successes: int = 0
    score_sum: float = 0.0
    daily_cost: list[float] = field(default_factory=list)
    daily_local_cost: list[float] = field(default_factory=list)


class EngineAgent:
    """A client population deciding with one strategy of the decision engine, learning from its own hires."""

    def __init__(self, strategy: str, config: RunConfig, market: Market) -> None:
        self.strategy = strategy
        self.engine = DecisionEngine(make_strategy(strategy), DecisionConfig(**config.decision), seed=config.seed + 7)
        self.weights = CompatibilityWeights(**config.compatibility)
        self.market = market
        n = len(market.ids)
        self.successes = np.zeros((n, len(TASK_TYPES)))
        self.failures = np.zeros((n, len(TASK_TYPES)))
        self.hires = np.zeros(n)
        self.good = np.zeros(n)
        self.decay = float(decay_factor(STEP_S, ReputationConfig().decay_per_month))
        self.last: Choice | None = None

    def decide(self, step: Step) -> Choice:
        prior = ReputationConfig()
        a = (prior.prior_success + self.successes[:, step.task_type]).T  # (B, n)
        b = (prior.prior_failure + self.failures[:, step.task_type]).T
        reliability = a / (a + b)
        hired = self.hires.sum()
        signals = MarketSignals(
            market_pressure=1.0 - step.available.mean(axis=1),
            failure_rate=1.0 - self.good.sum() / hired if hired else 0.25,
            task_urgency=step.urgency,
            risk_level=step.risk_level,
        )
        candidates = Candidates(
            ids=self.market.ids,
            skills=[self.market.type_names[k] for k in self.market.kind],
            compatibility=compatibility(step.ontological, step.embedding, reliability, self.weights),
            price=step.price,
            latency_s=step.latency_s,
            p_security=step.p_security,
            p_quality=np.zeros_like(step.price),
            overhead=step.overhead,
            success_a=a,
            success_b=b,
            good_decisions=self.good,
            hires=self.hires,
            available=step.available,
        )
        problem = Problem(
            value_usd=step.value,
            value_at_stake=step.value_at_stake(),
            local=LocalOption(step.local_cost, step.local_latency_s, step.local_failure, True),
            candidates=candidates,
            signals=signals,
            deadline_s=step.deadline_s,
            urgency=step.urgency,
            true_reliability=np.broadcast_to(self.market.true_success, step.price.shape),
        )
        self.last = self.engine.choose(problem)
        return self.last

    def learn(self, step: Step, rows: np.ndarray, hires: np.ndarray, success: np.ndarray, cost: np.ndarray) -> None:
        self.successes *= self.decay
        self.failures *= self.decay
        if len(rows) == 0 or self.strategy in ("oracle", "local-only"):
            return
        kinds = step.task_type[rows]
        np.add.at(self.successes, (hires, kinds), success)
        np.add.at(self.failures, (hires, kinds), ~success)
        expected_local = self.last.evaluation.problem.expected_local_cost[rows] if self.last else cost
        np.add.at(self.hires, hires, 1.0)
        np.add.at(self.good, hires, success & (cost <= expected_local))
        if self.last is not None:
            for row, hire, ok, paid, local in zip(rows, hires, success, cost, expected_local, strict=True):
                self.engine.learn(self.last.evaluation, int(row), int(hire), outcome_reward(bool(ok), paid, local))


def simulate(config: RunConfig) -> dict[str, Tally]:
    market = Market(config.market, config.clients, config.contractors, config.seed)
    agents: dict[str, Any] = {
        name: ReferenceRule(market, config.seed) if name == "reference-code" else EngineAgent(name, config, market)
        for name in config.strategies
    }
    tallies = {name: Tally() for name in config.strategies}
    hours = round(config.days * 24)
    for hour in range(hours):
        step = market.step(hour)
        if len(step):
            local_cost, local_time = step.local_outcome()
            for name, agent in agents.items():
                _play(agent, step, local_cost, local_time, tallies[name])
        if hour % 24 == 23 or hour == hours - 1:
            for tally in tallies.values():
                tally.daily_cost.append(tally.cost)
                tally.daily_local_cost.append(tally.local_cost)
    return tallies


def _play(agent: Any, step: Step, local_cost: np.ndarray, local_time: np.ndarray, tally: Tally) -> None:
    choice = agent.decide(step)
    rows = np.flatnonzero(choice.hire >= 0)
    hires = choice.hire[rows]
    cost, time = local_cost.copy(), local_time.copy()
    hired_cost, hired_time, success = step.hired_outcome(rows, hires)
    cost[rows], time[rows] = hired_cost, hired_time
    agent.learn(step, rows, hires, success, hired_cost)
    tally.cost += float(cost.sum())
    tally.time += float(time.sum())
    tally.local_cost += float(local_cost.sum())
    tally.local_time += float(local_time.sum())
    tally.tasks += len(step)
    tally.hires += len(rows)
    tally.explorations += int(choice.exploration.sum())
    tally.successes += int(success.sum())
    tally.score_sum += float(np.nansum(choice.score[rows]))


def metrics(config: RunConfig, tallies: dict[str, Tally]) -> list[dict[str, Any]]:
    """One row per strategy: fractions, not percents."""
    oracle = tallies.get("oracle")
    rows = []
    for name, t in tallies.items():
        local = t.local_cost or 1.0
        rows.append(
            {
                "config": config.name,
                "strategy": name,
                "run": config.run,
                "seed": config.seed,
                "market": config.market,
                "clients": config.clients,
                "contractors": config.contractors,
                "days": config.days,
                "cost_reduction": (t.local_cost - t.cost) / local,
                "time_savings": (t.local_time - t.time) / (t.local_time or 1.0),
                "outsourcing_rate": t.hires / t.tasks if t.tasks else 0.0,
                "exploration_rate": t.explorations / t.tasks if t.tasks else 0.0,
                "success_rate": t.successes / t.hires if t.hires else float("nan"),
                "mean_topsis": t.score_sum / t.hires if t.hires else float("nan"),
                "throughput": t.tasks / (config.days * 24.0),
                "regret": (t.cost - oracle.cost) / local if oracle else float("nan"),
                "tasks": t.tasks,
            }
        )
    return rows


def regret_series(tallies: dict[str, Tally]) -> dict[str, list[float]]:
    """Per strategy and day: cumulative (cost − oracle cost) / cumulative all-local cost."""
    oracle = tallies.get("oracle")
    if oracle is None:
        return {}
    return {
        name: [
            (c - o) / (loc or 1.0)
            for c, o, loc in zip(t.daily_cost, oracle.daily_cost, t.daily_local_cost, strict=True)
        ]
        for name, t in tallies.items()
    }
