"""The decision engine (paper sections III.F and IV): skill filter, costs, weights, TOPSIS and confidence (18) per
problem; a strategy chooses; the engine learns the weights and the record behind confidence from outcomes.
Deterministic under a seed. Also the agreed price of eq. (16).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from shared.economics.cost_model import TaskProfile, communication_cost
from shared.economics.decision.problem import (
    ALWAYS_LOCAL,
    BELOW_THRESHOLDS,
    FORCED,
    NO_CONTRACTORS,
    NO_SKILLED,
    REASONS,
    CandidateOffer,
    Candidates,
    Choice,
    Decision,
    DecisionConfig,
    Evaluation,
    Problem,
    best_among,
    criteria_matrix,
)
from shared.economics.decision.topsis import BENEFIT, DecisionError, masked_topsis
from shared.economics.decision.weights import WeightLearner, market_weights, masked_correlation_weights, outcome_reward
from shared.economics.reputation import ReputationBook, ReputationConfig


def decision_confidence(good_share: float | np.ndarray, samples: float | np.ndarray, z: float = 1.96) -> np.ndarray:
    """How sure the record makes us: 1 at full certainty, 0 with no samples."""
    p = np.asarray(good_share, dtype=np.float64)
    n = np.asarray(samples, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # (18) Confidence = 1 − z_{α/2} √(p(1−p)) / √n
        value = 1.0 - z * np.sqrt(p * (1.0 - p)) / np.sqrt(n)
    return np.clip(np.where(n > 0, value, 0.0), 0.0, 1.0)


def nash_price(client_reservation: float, contractor_floor: float, client_power: float = 0.5) -> float | None:
    """The agreed price between a client who would rather pay at most `client_reservation` (its own cost) and
    a contractor who needs at least `contractor_floor`. Eq. (16), argmin_{s_c} max_{s_a} U_c − U_a, is
    degenerate as printed (with a deal at price p, U_c − U_a does not depend on p); we use the generalised Nash
    bargaining solution, which maximises (U_c)^k (U_a)^(1−k) and splits the surplus by bargaining power k.
    None when there is no surplus to share."""
    if contractor_floor > client_reservation:
        return None
    return contractor_floor + (1.0 - client_power) * (client_reservation - contractor_floor)


class Strategy(Protocol):
    name: str
    hindsight: bool  # evaluates with the true success probabilities (Problem.true_reliability), not estimates

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice: ...


# ================================================================ the engine


class DecisionEngine:
    """Evaluates problems (skill filter, costs, weights, TOPSIS, confidence) and lets a strategy choose; learns
    the historical weights and the record behind confidence from outcomes. Deterministic under a seed."""

    def __init__(
        self,
        strategy: Strategy,
        config: DecisionConfig | None = None,
        seed: int = 0,
        reputation: ReputationBook | None = None,
        streams: int = 1,
    ) -> None:
        self.strategy = strategy
        self.config = config or DecisionConfig()
        self.rng = np.random.default_rng(seed)
        # one set of learned weights per independent stream of problems (the simulator's runs); the client has one
        self.learners = [WeightLearner(self.config.learning_rate) for _ in range(streams)]
        self.reputation = reputation or ReputationBook(ReputationConfig())
        self.hires: dict[str, int] = {}
        self.good_hires: dict[str, int] = {}

    @property
    def learner(self) -> WeightLearner:
        return self.learners[0]

    @learner.setter
    def learner(self, learner: WeightLearner) -> None:
        self.learners[0] = learner

    # -------------------------------------------------------------- one problem (the client)

    def candidates(self, offers: list[CandidateOffer], task: TaskProfile, at: float) -> Candidates:
        """The arrays a decision needs, from each contractor's offer and the track record so far."""
        posteriors = np.array([self.reputation.posterior(o.contractor, o.skill, at) for o in offers]).reshape(-1, 2)
        return Candidates(
            ids=[o.contractor for o in offers],
            skills=[o.skill for o in offers],
            compatibility=np.array([o.compatibility for o in offers]),
            price=np.array([o.offer.price_usd for o in offers]),
            latency_s=np.array([o.offer.latency_s for o in offers]),
            p_security=np.array([o.offer.p_security for o in offers]),
            p_quality=np.array([o.offer.p_quality for o in offers]),
            overhead=np.array(
                [
                    communication_cost(task.input_bytes, task.output_bytes, o.offer.link)
                    + o.offer.verification_usd
                    + o.offer.integration_usd
                    for o in offers
                ]
            ),
            success_a=posteriors[:, 0],
            success_b=posteriors[:, 1],
            good_decisions=np.array([self.good_hires.get(o.contractor, 0) for o in offers], dtype=np.float64),
            hires=np.array([self.hires.get(o.contractor, 0) for o in offers], dtype=np.float64),
        )

    def decide(self, problem: Problem) -> Decision:
        """One problem (B = 1): the decision with its record."""
        choice = self.choose(problem)
        evaluation = choice.evaluation
        index = int(choice.hire[0])
        local_cost = float(problem.expected_local_cost[0])
        values = {
            "score": float(choice.score[0]) if index >= 0 else float("nan"),
            "confidence": float(choice.confidence[0]) if index >= 0 else 0.0,
            "tau": self.config.topsis_threshold,
            "rho": self.config.confidence_threshold,
            "estimate": choice.estimate,
        }
        if choice.reason[0] == BELOW_THRESHOLDS:  # the numbers of the best candidate, which was not hired
            best = int(best_among(evaluation.scores, evaluation.eligible)[0])
            values.update(score=float(evaluation.scores[0, best]), confidence=float(evaluation.confidence[0, best]))
        decision = Decision(
            action="outsource" if index >= 0 else "local",
            strategy=choice.strategy,
            reason=REASONS[int(choice.reason[0])].format(**values),
            expected_local_cost=local_cost,
            evaluation=evaluation,
            config=self.config,
        )
        if index >= 0:
            c = problem.candidates
            decision.contractor, decision.skill, decision.candidate_index = c.ids[index], c.skills[index], index
            decision.exploration = bool(choice.exploration[0])
            decision.confidence = float(choice.confidence[0])
            decision.topsis_score = float(choice.score[0])
            decision.expected_external_cost = float(choice.cost[0])
        decision.exploration_cost = self.exploration_cost(problem, index)
        if choice.local_cost is not None:
            decision.local_cost_estimated = float(choice.local_cost[0])
        return decision

    def observe(
        self, decision: Decision, success: bool, actual_cost: float, at: float, record_quality: bool = True
    ) -> None:
        """Feed back how a hire went: reputation (unless the caller learns competence from its own signals:
        `record_quality=False`), the record behind eq. (18), and the learned weights."""
        if decision.action != "outsource" or decision.contractor is None or decision.candidate_index is None:
            return
        contractor = decision.contractor
        if record_quality:
            self.reputation.record(contractor, decision.skill or "", success, at)
        self.hires[contractor] = self.hires.get(contractor, 0) + 1
        local = decision.expected_local_cost
        self.good_hires[contractor] = self.good_hires.get(contractor, 0) + int(success and actual_cost <= local)
        if decision.evaluation is not None:
            self.learn(decision.evaluation, 0, decision.candidate_index, outcome_reward(success, actual_cost, local))

    # -------------------------------------------------------------- batches (the simulator)

    def evaluate(
        self, problem: Problem, reliability: np.ndarray | None = None, base: Evaluation | None = None
    ) -> Evaluation:
        """Skill filter, criteria, weights, TOPSIS and confidence (18) of every problem, under `reliability`
        (posterior means when None). A re-evaluation of `base` under other reliabilities keeps its eligible
        candidates and its confidence (which no reliability estimate changes)."""
        c = problem.candidates
        if base is None:
            eligible = (c.compatibility >= self.config.skill_threshold) & c.available
            good_share = np.divide(c.good_decisions, c.hires, out=np.zeros(c.hires.shape), where=c.hires > 0)
            confidence = decision_confidence(good_share, c.hires, self.config.z)
        else:
            eligible, confidence = base.eligible, base.confidence
        reliability = c.reliability if reliability is None else reliability
        matrix = criteria_matrix(problem, reliability)
        historical = np.stack([learner.weights for learner in self.learners])[problem.column(problem.stream, np.int64)]
        weights = market_weights(problem.signals, historical, self.config.market_beta, batch=c.batch)
        weights = masked_correlation_weights(matrix, weights, self.config.correlation_alpha, eligible)
        return Evaluation(
            problem, eligible, matrix, weights, masked_topsis(matrix, weights, BENEFIT, eligible), confidence
        )

    def choose(self, problem: Problem) -> Choice:
        evaluation = self.evaluate(problem, reliability=self._truth(problem) if self.strategy.hindsight else None)
        if len(problem.candidates) == 0:  # nothing to hire: every problem stays local
            batch = problem.batch
            nothing = np.full(batch, np.nan)
            reason = ALWAYS_LOCAL if self.strategy.name == "local-only" else NO_CONTRACTORS
            return Choice(
                self.strategy.name,
                evaluation,
                np.full(batch, -1),
                np.full(batch, reason),
                np.zeros(batch, dtype=bool),
                nothing,
                nothing,
                nothing,
            )
        return self.strategy.choose(evaluation, self)

    @staticmethod
    def _truth(problem: Problem) -> np.ndarray:
        if problem.true_reliability is None:
            raise DecisionError("a strategy in hindsight needs the true reliabilities")
        return np.broadcast_to(np.asarray(problem.true_reliability, dtype=np.float64), problem.candidates.price.shape)

    def learn(self, evaluation: Evaluation, rows: Any, hired: Any, rewards: Any) -> None:
        """Weight learning (13) from outcomes: problem `rows[k]` hired candidate `hired[k]` and earned
        `rewards[k]`. The outcomes of one stream are summed into one gradient step (one outcome: one step)."""
        rows, hired, rewards = np.atleast_1d(rows), np.atleast_1d(hired), np.atleast_1d(rewards).astype(np.float64)
        eligible = evaluation.eligible[rows]
        usable = (eligible.sum(axis=1) >= 2) & eligible[np.arange(len(rows)), hired]
        if not usable.any():
            return
        rows, hired, rewards, eligible = rows[usable], hired[usable], rewards[usable], eligible[usable]
        matrix = evaluation.matrix[rows]  # (k, n, 4)
        low = np.where(eligible[..., None], matrix, np.inf).min(axis=1)
        high = np.where(eligible[..., None], matrix, -np.inf).max(axis=1)
        varies = high - low > 1e-12
        chosen = (matrix[np.arange(len(rows)), hired] - low) / np.where(varies, high - low, 1.0)
        value = np.where(varies, np.where(BENEFIT, chosen, 1.0 - chosen), 0.5)  # the hired row's goodness, 1 = best
        gradient = np.clip(rewards, -1.0, 1.0)[:, None] * (value - value.mean(axis=1, keepdims=True))
        streams = evaluation.problem.column(evaluation.problem.stream, np.int64)[rows]
        for stream in np.unique(streams):
            self.learners[int(stream)].step(gradient[streams == stream].sum(axis=0))

    # -------------------------------------------------------------- helpers for strategies

    def affordable(self, problem: Problem, cost: np.ndarray, local_cost: np.ndarray | None = None) -> np.ndarray:
        """(B, n): whose all-in external cost beats doing the work locally (the rational guard), against the
        expected local cost or `local_cost` (the local option under the same estimate); everyone where the client
        cannot do the work itself or the guard is off."""
        if not self.config.rational_guard:
            return np.ones(cost.shape, dtype=bool)
        local = problem.expected_local_cost if local_cost is None else local_cost
        return (cost < local[:, None]) | ~problem.local_available[:, None]

    def exploration_cost(self, problem: Problem, hire: int) -> float:
        """For one problem: the expected cost (under posterior means) of hiring candidate `hire` (or local, −1)
        minus that of the best option the guard allows: what exploring costs."""
        means = criteria_matrix(problem, problem.candidates.reliability)[0, :, 0]
        local = float(problem.expected_local_cost[0]) if bool(problem.local_available[0]) else math.inf
        eligible = (problem.candidates.compatibility[0] >= self.config.skill_threshold) & problem.candidates.available[
            0
        ]
        best = min([local, *means[eligible].tolist()]) if eligible.any() or math.isfinite(local) else 0.0
        chosen = float(means[hire]) if hire >= 0 else local
        return max(0.0, chosen - best) if math.isfinite(chosen) and math.isfinite(best) else 0.0

    def choice(
        self,
        strategy: str,
        evaluation: Evaluation,
        hire: np.ndarray,
        reason: np.ndarray,
        exploration: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        estimate: str = "",
        local_cost: np.ndarray | None = None,
    ) -> Choice:
        """Assemble a Choice, reading score, cost and confidence of the hires from `evaluation`, and settle the
        problems with no eligible candidate (local, or the most compatible contractor when local is impossible)."""
        batch = len(hire)
        rows = np.arange(batch)
        problem = evaluation.problem
        c = problem.candidates
        empty = ~evaluation.eligible.any(axis=1)
        available = c.available.any(axis=1)
        forced = empty & ~problem.local_available & available
        hire = np.where(empty, -1, hire)
        reason = np.where(empty, np.where(available, NO_SKILLED, NO_CONTRACTORS), reason)
        hire = np.where(forced, best_among(c.compatibility, c.available), hire)
        reason = np.where(forced, FORCED, reason)
        picked = np.maximum(hire, 0)
        score = np.where(forced, 0.5, evaluation.scores[rows, picked])
        own = evaluation.confidence[rows, picked] if confidence is None else confidence
        exploration = np.zeros(batch, dtype=bool) if exploration is None else exploration & ~empty
        out = hire >= 0
        return Choice(
            strategy,
            evaluation,
            hire,
            reason,
            exploration & out,
            np.where(out, own, np.nan),
            np.where(out, score, np.nan),
            np.where(out, evaluation.matrix[rows, picked, 0], np.nan),
            estimate,
            local_cost,
        )
