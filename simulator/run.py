"""Simulation runs: a market, hour by hour, with every strategy deciding the same tasks side by side.

Each strategy is the real `shared.economics.decision.engine.DecisionEngine` (the reference code's rule is the
one exception: it is re-implemented in `simulator.reference` to be compared with ours).
Each learns only from its own work: the success or failure of each contractor and of its own worker on each task
type, decayed as in eq. (14), the record behind eq. (18), and the weights of eq. (13) (one gradient step per hour
with that hour's outcomes summed).

The runs of one configuration go in lock step: each hour, a strategy decides the tasks of all runs in one batch
(each run a stream with its own market, record and weights). A run's random decisions (ε, Thompson draws) come
from one generator per strategy, so a run's numbers depend on how many runs share the batch; every result is
still determined by the seeds and the number of runs.

A strategy learns what a live client sees: whether a hire's answer came back and passed its check, and, for the
share of hires with a gold probe beside them, whether it was right. The oracle knows each hire's true chance of a
right answer that passes.

Scoring is honest: the cost of a task is all the money it took or lost (`simulator.market.Money`: compute,
prices paid, overheads, penalties, value lost to wrong answers, breaches); cost reduction = (all-local cost −
actual cost) / all-local cost over every task; likewise time savings; regret = (actual cost − the oracle's cost)
/ all-local cost.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from shared.economics.decision.engine import DecisionEngine
from shared.economics.decision.problem import Candidates, Choice, DecisionConfig, LocalOption, Problem
from shared.economics.decision.strategies import LocalOnly, make_strategy
from shared.economics.decision.weights import MarketSignals, outcome_reward
from shared.economics.reputation import ReputationConfig, decay_factor
from shared.economics.skills import CompatibilityWeights, compatibility
from simulator.market import MONEY, SPECS, TASK_TYPES, Market, Money, Step
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
    outcomes: dict[str, Any] = field(default_factory=dict)  # the market's outcome options (deadline_penalty, ...)

    @property
    def deadline_penalty(self) -> bool:
        """Whether late work pays the deadline penalty in this run (an option of the market, maybe overridden)."""
        return bool(self.outcomes.get("deadline_penalty", SPECS[self.market]["outcomes"]["deadline_penalty"]))


@dataclass
class Tally:
    money: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MONEY, 0.0))
    time: float = 0.0
    local_cost: float = 0.0  # the all-local baseline's total, on the same tasks and luck
    local_time: float = 0.0
    tasks: int = 0
    right: int = 0  # tasks whose final answer was right
    breaches: int = 0
    hires: int = 0
    explorations: int = 0
    successes: int = 0  # hires the client saw succeed
    score_sum: float = 0.0
    daily_cost: list[float] = field(default_factory=list)
    daily_local_cost: list[float] = field(default_factory=list)

    @property
    def cost(self) -> float:
        return sum(self.money.values())


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
        self.successes = np.zeros((runs, len(TASK_TYPES), n))  # per run, task type and contractor
        self.failures = np.zeros((runs, len(TASK_TYPES), n))
        self.local_successes = np.zeros((runs, len(TASK_TYPES)))  # the client's own worker, from its checks
        self.local_failures = np.zeros((runs, len(TASK_TYPES)))
        self.hires = np.zeros((runs, n))
        self.good = np.zeros((runs, n))
        self.reputation = ReputationConfig()
        self.decay = float(decay_factor(STEP_S, self.reputation.decay_per_month))
        self.last: Choice | None = None

    def decide(self, step: Step, stream: np.ndarray) -> Choice:
        a, b = self.posterior(self.successes, self.failures, (stream, step.task_type))
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
            local=self.local_option(step, stream),
            candidates=candidates,
            signals=signals,
            deadline_s=step.deadline_s,
            urgency=step.urgency,
            true_reliability=step.true_success,
            stream=stream,
        )
        self.last = self.engine.choose(problem)
        return self.last

    def posterior(
        self, successes: np.ndarray, failures: np.ndarray, where: tuple[np.ndarray, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The Beta posterior (14) of the decayed evidence at `where`: (a, b)."""
        return self.reputation.prior_success + successes[where], self.reputation.prior_failure + failures[where]

    def local_option(self, step: Step, stream: np.ndarray) -> LocalOption:
        """The client's own worker: the oracle knows its true chance of a bad result; a learner, like the live
        client, carries a quality posterior learnt from its own checks."""
        if self.strategy == "oracle":
            return LocalOption(step.local_cost, step.local_latency_s, step.local_failure, True)
        a, b = self.posterior(self.local_successes, self.local_failures, (stream, step.task_type))
        return LocalOption(step.local_cost, step.local_latency_s, b / (a + b), True, quality_a=a, quality_b=b)

    @property
    def learning(self) -> bool:
        """A learning client learns and sends gold probes (the all-local baseline and the oracle have nothing to
        learn)."""
        return self.strategy not in ("oracle", "local-only")

    def learn(
        self,
        step: Step,
        stream: np.ndarray,
        rows: np.ndarray,
        hires: np.ndarray,
        success: np.ndarray,
        cost: np.ndarray,
        local_observed: np.ndarray,
    ) -> None:
        """From what the client saw: the checks of its hires (`success`) and of the tasks it ran itself
        (`local_observed`, per task), with gold probes' truths where it sent them."""
        for evidence in (self.successes, self.failures, self.local_successes, self.local_failures):
            evidence *= self.decay
        if not self.learning or self.last is None:
            return
        ran_locally = np.ones(len(step), dtype=bool)
        ran_locally[rows] = False
        passed = local_observed[ran_locally]
        where = (stream[ran_locally], step.task_type[ran_locally])
        np.add.at(self.local_successes, where, passed)
        np.add.at(self.local_failures, where, ~passed)
        if len(rows) == 0:
            return
        runs, kinds = stream[rows], step.task_type[rows]
        np.add.at(self.successes, (runs, kinds, hires), success)
        np.add.at(self.failures, (runs, kinds, hires), ~success)
        expected_local = self.last.evaluation.problem.expected_local_cost[rows]
        np.add.at(self.hires, (runs, hires), 1.0)
        np.add.at(self.good, (runs, hires), success & (cost <= expected_local))
        self.engine.learn(self.last.evaluation, rows, hires, outcome_reward(success, cost, expected_local))


def hours(config: RunConfig) -> int:
    """How many simulated hours a run lasts."""
    return round(config.days * 24)


def simulate_runs(configs: list[RunConfig], horizons: tuple[int, ...] = ()) -> dict[int, list[dict[str, Tally]]]:
    """Runs of one configuration (differing in seed) in lock step: each hour, every strategy decides the tasks of
    every run in one batch. Every run has its own market, learning and scores. The tallies after the runs' own
    number of hours, and after each of `horizons` (shorter): a run stopped earlier would have decided the same tasks
    the same way until then (nothing before an hour depends on how long the run lasts), so a shorter run is a
    prefix of a longer one."""
    first = configs[0]
    markets = [Market(c.market, c.clients, c.contractors, c.seed, c.outcomes) for c in configs]
    agents = {name: _agent(name, configs, markets) for name in first.strategies}
    tallies = [{name: Tally() for name in first.strategies} for _ in configs]
    end = hours(first)
    snapshots: dict[int, list[dict[str, Tally]]] = {}
    for hour in range(end):
        step, stream = merge([market.step(hour) for market in markets])
        if len(step):
            local = step.local_outcome()
            for name, agent in agents.items():
                choice = _decide(agent, step, stream)
                _settle(agent, choice, step, stream, local, [t[name] for t in tallies])
        if hour % 24 == 23:
            _close_day(tallies)
        if hour + 1 in horizons and hour + 1 < end:
            snapshots[hour + 1] = _closed(tallies, day_ended=hour % 24 == 23)
    if end % 24:
        _close_day(tallies)  # the last, partial day
    snapshots[end] = tallies
    return snapshots


def _close_day(tallies: list[dict[str, Tally]]) -> None:
    for run in tallies:
        for tally in run.values():
            tally.daily_cost.append(tally.cost)
            tally.daily_local_cost.append(tally.local_cost)


def _closed(tallies: list[dict[str, Tally]], day_ended: bool) -> list[dict[str, Tally]]:
    """A copy of the tallies as a run ending now would leave them (its last, partial day closed)."""
    copies = [{name: copy.deepcopy(tally) for name, tally in run.items()} for run in tallies]
    if not day_ended:
        _close_day(copies)
    return copies


def simulate(config: RunConfig) -> dict[str, Tally]:
    return simulate_runs([config])[hours(config)][0]


class LocalBaseline:
    """The all-local baseline (the engine's `local-only`): every task runs on the client's machine, so there is
    nothing to evaluate or learn."""

    def decide(self, step: Step, stream: np.ndarray) -> SimpleNamespace:
        batch = len(step)
        return SimpleNamespace(
            hire=np.full(batch, -1), exploration=np.zeros(batch, dtype=bool), score=np.full(batch, np.nan)
        )


def _agent(name: str, configs: list[RunConfig], markets: list[Market]) -> Any:
    if name == "reference-code":
        return [ReferenceRule(m, c.seed) for m, c in zip(markets, configs, strict=True)]
    if name == LocalOnly.name:
        return LocalBaseline()
    return EngineAgent(name, configs[0], markets)


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
    local: tuple[Money, np.ndarray, np.ndarray],
    tallies: list[Tally],
) -> None:
    rows = np.flatnonzero(choice.hire >= 0)
    hires = choice.hire[rows]
    local_money, local_time, local_right = local
    probing = isinstance(agent, EngineAgent) and agent.learning
    local_observed, probe_cost = step.local_observed(probing)
    money = {name: getattr(local_money, name).copy() for name in MONEY}
    money["overhead"] = money["overhead"] + probe_cost
    time, right = local_time.copy(), local_right.copy()
    hired, hired_time, observed, hired_right = step.hired_outcome(rows, hires, local, probing)
    for name in MONEY:
        money[name][rows] = getattr(hired, name)
    time[rows], right[rows] = hired_time, hired_right
    if isinstance(agent, EngineAgent):
        agent.learn(step, stream, rows, hires, observed, hired.total, local_observed)
    runs = len(tallies)

    def per_run(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        index = stream if where is None else stream[where]
        return np.bincount(index, weights=values.astype(float), minlength=runs)

    spent = {name: per_run(values) for name, values in money.items()}
    sums = {
        "time": per_run(time),
        "local_cost": per_run(local_money.total),
        "local_time": per_run(local_time),
        "tasks": per_run(np.ones(len(stream))),
        "right": per_run(right),
        "breaches": per_run(step.breach[rows, hires], rows),
        "hires": per_run(np.ones(len(rows)), rows),
        "explorations": per_run(choice.exploration),
        "successes": per_run(observed, rows),
        "score_sum": per_run(np.nan_to_num(choice.score[rows]), rows),
    }
    for run, tally in enumerate(tallies):
        for name in MONEY:
            tally.money[name] += spent[name][run]
        for name, values in sums.items():
            current = getattr(tally, name)
            setattr(tally, name, current + (round(values[run]) if isinstance(current, int) else float(values[run])))


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
                "deadline_penalty": config.deadline_penalty,
                "cost_reduction": (t.local_cost - t.cost) / local,
                "time_savings": (t.local_time - t.time) / (t.local_time or 1.0),
                "outsourcing_rate": t.hires / t.tasks if t.tasks else 0.0,
                "exploration_rate": t.explorations / t.tasks if t.tasks else 0.0,
                "success_rate": t.successes / t.hires if t.hires else float("nan"),
                "mean_topsis": t.score_sum / t.hires if t.hires else float("nan"),
                "throughput": t.tasks / (config.days * 24.0),
                "regret": (t.cost - oracle.cost) / local if oracle else float("nan"),
                "tasks": t.tasks,
                "quality": t.right / t.tasks if t.tasks else float("nan"),
                "breach_rate": t.breaches / t.hires if t.hires else 0.0,
                **{f"{name}_usd": t.money[name] / (t.tasks or 1) for name in MONEY},
                "total_usd": t.cost / (t.tasks or 1),
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
