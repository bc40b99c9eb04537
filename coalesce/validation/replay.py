"""Strategies replayed on a recording: the paper's Table II on this market.

A learning strategy decides each held-out item in order with the client's own engine (`DecisionEngine`, the
strategy of `shared.economics.decision.strategies`, a `ReputationBook` of competence and a `CostCalibrator`),
from what a live client would know at that moment: the calibrated prices, the skill match (its performance term
following the agent's record), and the competence it has learnt from its own checks and its gold probes. The
chosen agent's recorded answer is what it gets; a failed
check sends the item to the next choice (at most `MAX_ATTEMPTS` attempts, local work being the last), as the
live client does. Probes follow the live client's rules (`client_agent.probing`, `client_agent.quality`): the
least known agents of each decision first, at a rate that falls with the posterior's deviation, at most two per
item, within a budget of a share of what was spent; each is a recorded answer to a gold item, paid as recorded,
whose grade is known only once its recorded seconds have passed on the stream's clock (the seconds of the work
decided meanwhile), as the live client's probes come back in the background.
The replay does not model the live client's agreement rounds (the live run beside it runs without them).

Baselines: `all-local` (the client's own worker on everything), `always-cheapest` and `always-best` (per skill,
the agent cheapest on the recording and the one of highest measured quality on it: hindsight, fixed), `random`
(any able agent) and `oracle` (per item, the agent whose answer costs least in money plus value lost: the
cheapest right answer where there is one).

Money, for every strategy alike: spend (work, probes) plus value lost (each subtask's value times the share of
its delivered answer that is wrong; all of it when nothing is delivered).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from client_agent.deciding import estimate_task_profile
from client_agent.models import SubtaskSpec
from client_agent.probing import UNIFORM_DEVIATION
from client_agent.quality import WEIGHTS, QualityConfig
from client_agent.state import LOCAL
from coalesce.validation.recording import Attempt, Item, Recording
from shared.economics.cost_model import CostCalibrator, Link, Offer
from shared.economics.decision.engine import DecisionEngine
from shared.economics.decision.problem import CandidateOffer, DecisionConfig, LocalOption, Problem
from shared.economics.decision.strategies import make_strategy
from shared.economics.decision.weights import MarketSignals
from shared.economics.reputation import SENSITIVITY_WEIGHT, ReputationBook, security_risk
from shared.economics.skills import CompatibilityWeights

LEARNING = ("paper-deterministic", "paper-epsilon-greedy", "ucb1", "thompson")
FIXED = ("all-local", "always-cheapest", "always-best", "random", "oracle")
STRATEGY_ORDER = ("all-local", "always-cheapest", "always-best", "random", *LEARNING, "oracle")
MAX_ATTEMPTS = 3
STEP_S = 30.0  # the time between two items of the stream (for the book's decay)
VERIFICATION_USD = 0.0005  # the client's defaults (client_agent.service.ClientConfig)
BREACH_PROBABILITY = 0.01
CURVE_POINTS = 50


@dataclass
class Result:
    """One strategy and seed over the evaluation stream."""

    strategy: str
    seed: int
    subtasks: int = 0
    work_usd: float = 0.0
    probe_usd: float = 0.0
    value_lost_usd: float = 0.0
    correct: float = 0.0
    time_s: float = 0.0
    outsourced: int = 0
    explored: int = 0
    probes: int = 0
    chosen: dict[str, int] = field(default_factory=dict)
    curve: list[tuple[int, float, float]] = field(default_factory=list)  # (items, quality, total cost) so far

    @property
    def spend_usd(self) -> float:
        return self.work_usd + self.probe_usd

    @property
    def total_cost_usd(self) -> float:
        return self.spend_usd + self.value_lost_usd

    @property
    def quality(self) -> float:
        return self.correct / self.subtasks if self.subtasks else 0.0

    @property
    def cost_per_correct_usd(self) -> float:
        return self.spend_usd / self.correct if self.correct else float("inf")

    def count(self, item: Item, tried: list[Attempt], final: Attempt | None) -> None:
        delivered = final.delivered_grade() if final else 0.0
        self.subtasks += 1
        self.work_usd += sum(a.cost_usd for a in tried)
        self.time_s += sum(a.seconds for a in tried)
        self.correct += delivered
        self.value_lost_usd += item.value_usd * (1.0 - delivered)
        for a in tried:
            self.chosen[a.agent] = self.chosen.get(a.agent, 0) + 1
        self.outsourced += any(a.agent != LOCAL for a in tried)

    def row(self) -> dict[str, object]:
        """The CSV row (results.csv)."""
        return {
            "strategy": self.strategy,
            "seed": self.seed,
            "subtasks": self.subtasks,
            "spend_usd": round(self.spend_usd, 6),
            "probe_usd": round(self.probe_usd, 6),
            "value_lost_usd": round(self.value_lost_usd, 4),
            "total_cost_usd": round(self.total_cost_usd, 4),
            "quality": round(self.quality, 4),
            "correct": round(self.correct, 3),
            "cost_per_correct_usd": round(self.cost_per_correct_usd, 8),
            "time_s": round(self.time_s, 2),
            "outsourcing_rate": round(self.outsourced / max(self.subtasks, 1), 4),
            "exploration_rate": round(self.explored / max(self.subtasks, 1), 4),
            "probes": self.probes,
        }


# ---------------------------------------------------------------- fixed strategies


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def fixed_choice(recording: Recording, strategy: str) -> dict[str, str]:
    """Per skill, the one agent a fixed strategy uses: the cheapest or the best on the recording."""
    chosen = {}
    for skill in recording.skills():
        items = [i for i in recording.evaluation if i.skill == skill]
        agents = recording.agents_for(skill)
        cost = {a: _mean([i.attempts[a].cost_usd for i in items]) for a in agents}
        quality = {a: _mean([i.attempts[a].delivered_grade() for i in items]) for a in agents}
        if strategy == "always-cheapest":
            chosen[skill] = min(agents, key=lambda a: (cost[a], -quality[a]))
        else:
            chosen[skill] = max(agents, key=lambda a: (quality[a], -cost[a]))
    return chosen


def oracle_attempt(item: Item) -> Attempt:
    """The attempt that costs least in money plus value lost."""
    return min(item.attempts.values(), key=lambda a: a.cost_usd + item.value_usd * (1.0 - a.delivered_grade()))


def replay_fixed(recording: Recording, strategy: str, seed: int) -> Result:
    result = Result(strategy, seed)
    rng = np.random.default_rng(seed)
    per_skill = fixed_choice(recording, strategy) if strategy in ("always-cheapest", "always-best") else {}
    for n, item in enumerate(recording.evaluation, 1):
        if strategy == "oracle":
            chosen = oracle_attempt(item)
        elif strategy == "all-local":
            chosen = item.attempts[LOCAL]
        elif strategy == "random":
            agents = sorted(item.attempts)
            chosen = item.attempts[agents[int(rng.integers(len(agents)))]]
        else:
            chosen = item.attempts[per_skill[item.skill]]
        result.count(item, [chosen], chosen)
        _point(result, n, len(recording.evaluation))
    return result


def _point(result: Result, n: int, total: int) -> None:
    if n == total or n % max(total // CURVE_POINTS, 1) == 0:
        result.curve.append((n, round(result.quality, 4), round(result.total_cost_usd, 4)))


# ---------------------------------------------------------------- learning strategies


class Learner:
    """One learning strategy's client over the stream: its engine, competence book, calibration, probes."""

    def __init__(self, recording: Recording, strategy: str, seed: int, quality: QualityConfig) -> None:
        self.recording = recording
        self.book = ReputationBook()
        self.engine = DecisionEngine(make_strategy(strategy), DecisionConfig(), seed, self.book)
        self.calibrator = CostCalibrator(DecisionConfig().calibration_lambda)
        self.config = quality
        self.rng = np.random.default_rng(seed + 1)
        self.result = Result(strategy, seed)
        self.now = time.time()
        self.gold = {skill: [i for i in recording.gold if i.skill == skill] for skill in recording.skills()}
        self.gold_cursor: dict[tuple[str, str], int] = {}
        self.clock = 0.0  # seconds of work so far: a probe's grade is known once its recorded seconds have passed
        self.pending: list[tuple[float, str, str, float]] = []  # (known at, agent, skill, grade)

    def problem(self, item: Item, tried: set[str]) -> tuple[Problem, list[str]]:
        spec = SubtaskSpec.model_validate({**item.subtask, "value_usd": item.value_usd})
        profile = estimate_task_profile(spec, item.value_usd, None)
        offers = []
        for agent, a in item.attempts.items():
            if agent == LOCAL or agent in tried:
                continue
            offer = Offer(
                price_usd=self.calibrator.estimate(agent, a.raw_price_usd),
                latency_s=a.latency_s,
                p_security=security_risk([BREACH_PROBABILITY] * 2, "internal", "e2e"),
                verification_usd=VERIFICATION_USD,
                link=Link(bandwidth_bytes_per_s=12.5e6),
            )
            offers.append(CandidateOffer(agent, item.skill, self.compatibility(a, item.skill), offer))
        local = item.attempts.get(LOCAL)
        qa, qb = self.book.posterior(LOCAL, item.skill, self.now)
        recent = sum(self.engine.hires.values())
        good = sum(self.engine.good_hires.values())
        signals = MarketSignals(
            market_pressure=0.25,
            failure_rate=1 - good / recent if recent else 0.25,
            task_urgency=0.25,
            risk_level=SENSITIVITY_WEIGHT["internal"],
        )
        problem = Problem(
            value_usd=item.value_usd,
            value_at_stake=item.value_usd,
            local=LocalOption(
                cost_usd=self.calibrator.estimate(f"local:{item.skill}", local.raw_price_usd) if local else 0.0,
                latency_s=local.latency_s if local else 0.0,
                p_failure=qb / (qa + qb),
                available=local is not None and LOCAL not in tried,
                quality_a=qa,
                quality_b=qb,
            ),
            candidates=self.engine.candidates(offers, profile, self.now),
            signals=signals,
            urgency=0.25,
        )
        return problem, [o.contractor for o in offers]

    def compatibility(self, attempt: Attempt, skill: str) -> float:
        """The skill match (12) as the live client computes it now: the recorded one (made with no track record)
        with its performance term moved to the agent's reliability so far."""
        prior = self.book.config.prior_success / (self.book.config.prior_success + self.book.config.prior_failure)
        performance = self.book.reliability(attempt.agent, skill, self.now)
        return attempt.compatibility + CompatibilityWeights().performance * (performance - prior)

    def learn(self, attempt: Attempt, skill: str) -> None:
        """What the live client learns from an attempt (`client_agent.quality.Quality.learn`)."""
        if not attempt.answered:
            self.book.record(attempt.agent, skill, 0.0, self.now, WEIGHTS["outcome"], "outcome")
        elif not attempt.passed:
            self.book.record(attempt.agent, skill, 0.0, self.now, WEIGHTS["check"], "check")
        elif attempt.checked:
            self.book.record(attempt.agent, skill, 1.0, self.now, WEIGHTS["check"], "check")
        key = f"local:{skill}" if attempt.agent == LOCAL else attempt.agent
        self.calibrator.observe(key, attempt.raw_price_usd, attempt.cost_usd)

    def probe(self, skill: str, agents: list[str]) -> None:
        """The live client's probes beside one item (`client_agent.probing.Prober.maybe`)."""
        if not self.config.probes or not self.gold.get(skill):
            return
        deviation = {a: self.book.deviation(a, skill, self.now) for a in agents}
        order = sorted(agents, key=lambda a: (-deviation[a], self.rng.random()))
        started = 0
        for agent in order:
            if started >= self.config.probes_per_subtask:
                return
            unsure = min(deviation[agent] / UNIFORM_DEVIATION, 1.0)
            rate = self.config.probe_rate_min + (self.config.probe_rate_max - self.config.probe_rate_min) * unsure
            if self.rng.random() >= rate:
                continue
            items = [i for i in self.gold[skill] if agent in i.attempts]
            if not items:
                continue
            cursor = self.gold_cursor.get((agent, skill), int(self.rng.integers(len(items))))
            answer = items[cursor % len(items)].attempts[agent]
            spent = self.result.spend_usd
            allowance = self.config.probe_budget_share * spent + self.config.probe_budget_floor_usd
            if answer.cost_usd > allowance - self.result.probe_usd:
                continue
            self.gold_cursor[(agent, skill)] = cursor + 1
            score = answer.grade if answer.passed else 0.0
            self.pending.append((self.clock + answer.seconds, agent, skill, score))
            self.result.probe_usd += answer.cost_usd
            self.result.probes += 1
            started += 1

    def step(self, item: Item) -> None:
        tried: list[Attempt] = []
        final: Attempt | None = None
        for attempt_number in range(MAX_ATTEMPTS):
            problem, contractors = self.problem(item, {a.agent for a in tried})
            decision = self.engine.decide(problem)
            if attempt_number == 0:
                self.probe(item.skill, contractors + ([LOCAL] if LOCAL in item.attempts else []))
                self.result.explored += decision.exploration
            agent = decision.contractor if decision.action == "outsource" else LOCAL
            if agent not in item.attempts or (agent == LOCAL and not bool(problem.local_available[0])):
                break  # nothing left to try
            final = item.attempts[agent or LOCAL]
            tried.append(final)
            self.learn(final, item.skill)
            if decision.action == "outsource":
                self.engine.observe(decision, final.passed, final.cost_usd, self.now, record_quality=False)
            if final.passed or agent == LOCAL:
                break
        self.result.count(item, tried, final)
        self.now += STEP_S
        self.clock += sum(a.seconds for a in tried)
        self.settle_probes()

    def settle_probes(self) -> None:
        """The probes whose answers have come back by now (the live client's run in the background)."""
        known = [p for p in self.pending if p[0] <= self.clock]
        self.pending = [p for p in self.pending if p[0] > self.clock]
        for _, agent, skill, score in known:
            self.book.record(agent, skill, score, self.now, WEIGHTS["probe"], "probe")


def replay_learning(recording: Recording, strategy: str, seed: int, quality: QualityConfig | None = None) -> Result:
    learner = Learner(recording, strategy, seed, quality or QualityConfig())
    total = len(recording.evaluation)
    for n, item in enumerate(recording.evaluation, 1):
        learner.step(item)
        _point(learner.result, n, total)
    return learner.result


def replay(
    recording: Recording,
    strategies: tuple[str, ...] = STRATEGY_ORDER,
    seeds: int = 5,
    advance: Callable[[], None] = lambda: None,
) -> list[Result]:
    """Every strategy for `seeds` seeds on the recording."""
    results = []
    for strategy in strategies:
        for seed in range(seeds):
            run = replay_learning if strategy in LEARNING else replay_fixed
            results.append(run(recording, strategy, seed))
            advance()
    return results
