"""Simulation runs: a market, hour by hour, with every strategy deciding the same tasks side by side.

Each strategy is the real `shared.economics.decision.engine.DecisionEngine` (the reference code's rule is the
one exception: it is re-implemented in `simulator.reference` to be compared with ours).
Each learns only from its own hires: the success or failure of each contractor on each task type, decayed as
in eq. (14), the record behind eq. (18), and the weights of eq. (13)
(one gradient step per hour with that hour's outcomes summed).

The runs of one configuration go in lock step: each hour, a strategy decides the tasks of all runs in one batch
(each run a stream with its own market, record and weights). A run's random decisions (ε, Thompson draws) come
from one generator per strategy, so a run's numbers depend on how many runs share the batch; every result is
still determined by the seeds and the number of runs.

Scoring is honest: cost reduction = (all-local cost − actual cost) / all-local cost over every task, losses and
redos included; likewise time savings; regret = (actual cost − the oracle's cost) / all-local cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from shared.economics.decision.engine import DecisionEngine
from shared.economics.decision.problem import Candidates, Choice, DecisionConfig, LocalOption, Problem
from shared.economics.decision.strategies import make_strategy
from shared.economics.decision.weights import MarketSignals, outcome_reward
from shared.economics.reputation import ReputationConfig, decay_factor
from shared.economics.skills import CompatibilityWeights, compatibility
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


def merge(steps: list[Step]) -> tuple[Step, np.ndarray]:
    """The tasks of one hour of every run, as one batch, and the run (stream) of each task."""
    merged = Step(
        **{name: np.concatenate([getattr(step, name) for step in steps]) for name in Step.__dataclass_fields__}
    )
    return merged, np.concatenate([np.full(len(step), run) for run, step in enumerate(steps)])


class EngineAgent:
    """The clients of every run, deciding with one strategy of the decision engine (all runs in one batch per
    hour), each run learning only from its own hires."""

    def __init__(self, strategy: str, config: RunConfig, markets: list[Market]) -> None:
        self.strategy = strategy
        self.engine = DecisionEngine(
            make_strategy(strategy), DecisionConfig(**config.decision), seed=config.seed + 7, streams=len(markets)
        )
        self.weights = CompatibilityWeights(**config.compatibility)
        self.markets = markets
        runs, n = len(markets), len(markets[0].ids)
        self.successes = np.zeros((runs, n, len(TASK_TYPES)))
        self.failures = np.zeros((runs, n, len(TASK_TYPES)))
        self.hires = np.zeros((runs, n))
        self.good = np.zeros((runs, n))
        self.true_success = np.stack([m.true_success for m in markets])
        self.decay = float(decay_factor(STEP_S, ReputationConfig().decay_per_month))
        self.last: Choice | None = None

    def decide(self, step: Step, stream: np.ndarray) -> Choice:
        prior = ReputationConfig()
        columns = np.arange(self.hires.shape[1])[None, :]
        a = prior.prior_success + self.successes[stream[:, None], columns, step.task_type[:, None]]  # (B, n)
        b = prior.prior_failure + self.failures[stream[:, None], columns, step.task_type[:, None]]
        hired, good = self.hires.sum(axis=1), self.good.sum(axis=1)
        failure_rate = np.divide(hired - good, hired, out=np.full(len(hired), 0.25), where=hired > 0)
        signals = MarketSignals(
            market_pressure=1.0 - step.available.mean(axis=1),
            failure_rate=failure_rate[stream],
            task_urgency=step.urgency,
            risk_level=step.risk_level,
        )
        market = self.markets[0]
        candidates = Candidates(
            ids=market.ids,
            skills=[market.type_names[k] for k in market.kind],
            compatibility=compatibility(step.ontological, step.embedding, a / (a + b), self.weights),
            price=step.price,
            latency_s=step.latency_s,
            p_security=step.p_security,
            p_quality=np.zeros_like(step.price),
            overhead=step.overhead,
            success_a=a,
            success_b=b,
            good_decisions=self.good[stream],
            hires=self.hires[stream],
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
            true_reliability=self.true_success[stream],
            stream=stream,
        )
        self.last = self.engine.choose(problem)
        return self.last

    def learn(
        self, step: Step, stream: np.ndarray, rows: np.ndarray, hires: np.ndarray, success: np.ndarray, cost: np.ndarray
    ) -> None:
        self.successes *= self.decay
        self.failures *= self.decay
        if len(rows) == 0 or self.strategy in ("oracle", "local-only") or self.last is None:
            return
        runs, kinds = stream[rows], step.task_type[rows]
        np.add.at(self.successes, (runs, hires, kinds), success)
        np.add.at(self.failures, (runs, hires, kinds), ~success)
        expected_local = self.last.evaluation.problem.expected_local_cost[rows]
        np.add.at(self.hires, (runs, hires), 1.0)
        np.add.at(self.good, (runs, hires), success & (cost <= expected_local))
        self.engine.learn(self.last.evaluation, rows, hires, outcome_reward(success, cost, expected_local))


def simulate_runs(configs: list[RunConfig]) -> list[dict[str, Tally]]:
    """Runs of one configuration (differing in seed) in lock step: each hour, every strategy decides the tasks of
    every run in one batch. Every run has its own market, learning and scores."""
    first = configs[0]
    markets = [Market(c.market, c.clients, c.contractors, c.seed) for c in configs]
    agents: dict[str, Any] = {
        name: [ReferenceRule(m, c.seed) for m, c in zip(markets, configs, strict=True)]
        if name == "reference-code"
        else EngineAgent(name, first, markets)
        for name in first.strategies
    }
    tallies = [{name: Tally() for name in first.strategies} for _ in configs]
    hours = round(first.days * 24)
    for hour in range(hours):
        step, stream = merge([market.step(hour) for market in markets])
        if len(step):
            local_cost, local_time = step.local_outcome()
            for name, agent in agents.items():
                choice = _decide(agent, step, stream)
                _settle(agent, choice, step, stream, local_cost, local_time, [t[name] for t in tallies])
        if hour % 24 == 23 or hour == hours - 1:
            for run in tallies:
                for tally in run.values():
                    tally.daily_cost.append(tally.cost)
                    tally.daily_local_cost.append(tally.local_cost)
    return tallies


def simulate(config: RunConfig) -> dict[str, Tally]:
    return simulate_runs([config])[0]


def _decide(agent: Any, step: Step, stream: np.ndarray) -> Any:
    if not isinstance(agent, list):
        return agent.decide(step, stream)
    parts = [rule.decide(step.take(stream == run)) for run, rule in enumerate(agent)]  # the reference rule, per run
    return SimpleNamespace(
        **{key: np.concatenate([getattr(p, key) for p in parts]) for key in ("hire", "exploration", "score")}
    )


def _settle(
    agent: Any,
    choice: Any,
    step: Step,
    stream: np.ndarray,
    local_cost: np.ndarray,
    local_time: np.ndarray,
    tallies: list[Tally],
) -> None:
    rows = np.flatnonzero(choice.hire >= 0)
    hires = choice.hire[rows]
    cost, time = local_cost.copy(), local_time.copy()
    hired_cost, hired_time, success = step.hired_outcome(rows, hires)
    cost[rows], time[rows] = hired_cost, hired_time
    if not isinstance(agent, list):
        agent.learn(step, stream, rows, hires, success, hired_cost)
    runs = len(tallies)

    def per_run(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        index = stream if where is None else stream[where]
        return np.bincount(index, weights=values.astype(float), minlength=runs)

    sums = {
        "cost": per_run(cost),
        "time": per_run(time),
        "local_cost": per_run(local_cost),
        "local_time": per_run(local_time),
        "tasks": per_run(np.ones(len(stream))),
        "hires": per_run(np.ones(len(rows)), rows),
        "explorations": per_run(choice.exploration),
        "successes": per_run(success, rows),
        "score_sum": per_run(np.nan_to_num(choice.score[rows]), rows),
    }
    for run, tally in enumerate(tallies):
        tally.cost += sums["cost"][run]
        tally.time += sums["time"][run]
        tally.local_cost += sums["local_cost"][run]
        tally.local_time += sums["local_time"][run]
        tally.tasks += int(sums["tasks"][run])
        tally.hires += int(sums["hires"][run])
        tally.explorations += int(sums["explorations"][run])
        tally.successes += int(sums["successes"][run])
        tally.score_sum += sums["score_sum"][run]


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
