"""The economic decision (paper sections III.F and IV): TOPSIS over [cost, reliability, latency, security risk]
with market-adaptive, correlation-adjusted, learned weights; decision strategies from the paper's deterministic
rule to UCB1 and Thompson sampling; a hindsight oracle for evaluation.

No I/O: the client service and the simulator call the same `DecisionEngine`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from shared.cost_model import Offer, TaskProfile, communication_cost, latency_penalty, risk_cost
from shared.reputation import ReputationBook, ReputationConfig

CRITERIA = ("cost", "reliability", "latency", "security_risk")
BENEFIT = np.array([False, True, False, False])


class DecisionError(ValueError):
    """A decision input that has no defined answer (shapes that do not fit, NaN, negative weights)."""


# ================================================================ TOPSIS


def topsis(matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray) -> np.ndarray:
    """Closeness to the ideal of each row (alternative) over the columns (criteria), in [0, 1].

    Vector normalisation, weights normalised to sum 1, ideal and anti-ideal per column, score D− / (D+ + D−).
    Degenerate inputs have defined answers: an all-zero column, or a column equal in every row, cannot tell
    alternatives apart and adds nothing; an alternative that is at once ideal and anti-ideal (one alternative,
    or all alike) scores 0.5. NaN, infinities, negative weights or shapes that do not fit raise DecisionError.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    benefit = np.asarray(benefit, dtype=bool)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise DecisionError("the decision matrix must be 2-D with at least one alternative and one criterion")
    if weights.shape != (matrix.shape[1],) or benefit.shape != (matrix.shape[1],):
        raise DecisionError("weights and benefit need one entry per criterion (column)")
    if not np.all(np.isfinite(matrix)) or not np.all(np.isfinite(weights)):
        raise DecisionError("the decision matrix and the weights must be finite (no NaN or infinity)")
    if np.any(weights < 0) or weights.sum() <= 0:
        raise DecisionError("weights must be non-negative and not all zero")
    weights = weights / weights.sum()
    columns = np.ascontiguousarray(matrix.T)  # criteria × alternatives: reductions run over contiguous memory
    norms = np.sqrt(np.einsum("ij,ij->i", columns, columns))
    scale = np.divide(weights, norms, out=np.zeros_like(weights), where=norms > 0)
    weighted = columns * scale[:, None]  # vector-normalised, then weighted
    high, low = weighted.max(axis=1), weighted.min(axis=1)
    to_ideal = weighted - np.where(benefit, high, low)[:, None]
    to_anti = weighted - np.where(benefit, low, high)[:, None]
    d_plus = np.sqrt(np.einsum("ij,ij->j", to_ideal, to_ideal))
    d_minus = np.sqrt(np.einsum("ij,ij->j", to_anti, to_anti))
    total = d_plus + d_minus
    return np.divide(d_minus, total, out=np.full(len(matrix), 0.5), where=total > 1e-15)


# ================================================================ weights


@dataclass(frozen=True)
class MarketSignals:
    """The market's state, each in [0, 1], for the dynamic weights: how tight prices are, how often hires fail,
    how urgent the task is, how sensitive its data is."""

    market_pressure: float = 0.25
    failure_rate: float = 0.25
    task_urgency: float = 0.25
    risk_level: float = 0.25

    def vector(self) -> np.ndarray:
        return np.clip([self.market_pressure, self.failure_rate, self.task_urgency, self.risk_level], 0.0, 1.0)


def normalised(weights: np.ndarray) -> np.ndarray:
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = weights.sum()
    return weights / total if total > 0 else np.full(len(weights), 1.0 / len(weights))


def market_weights(signals: MarketSignals, historical: np.ndarray, beta: float) -> np.ndarray:
    """w_cost = β·MarketPressure + (1−β)·Hist(cost), and likewise reliability ← FailureRate, latency ←
    TaskUrgency, security ← RiskLevel; normalised."""
    return normalised(beta * signals.vector() + (1.0 - beta) * normalised(historical))


def correlation_adjusted_weights(matrix: np.ndarray, weights: np.ndarray, alpha: float) -> np.ndarray:
    """Weights of criteria that move together are shrunk, so correlated criteria are not counted twice.
    Correlations need at least three alternatives; columns that do not vary correlate with nothing."""
    columns = np.ascontiguousarray(np.asarray(matrix, dtype=np.float64).T)  # criteria × alternatives
    rho = np.zeros((columns.shape[0], columns.shape[0]))
    centred = columns - columns.mean(axis=1, keepdims=True)
    spread = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    varying = spread > 1e-12 * np.maximum(np.abs(columns).max(axis=1), 1e-300)
    if columns.shape[1] >= 3 and varying.sum() >= 2:
        standard = centred[varying] / spread[varying, None]
        rho[np.ix_(varying, varying)] = standard @ standard.T  # Pearson's ρ
    np.fill_diagonal(rho, 0.0)
    # (11) w'_i = w_i × (1 − α Σ_{j≠i} |ρ_ij|)
    return normalised(weights * np.clip(1.0 - alpha * np.abs(rho).sum(axis=1), 0.0, None))


class WeightLearner:
    """The historical weights Hist(·), learned from outcomes.

    Eq. (13) leaves Q undefined. Our reading, a policy-gradient step: after a hire, the reward r in [−1, 1]
    (the share of the local cost saved; −1 for a failure) credits the criteria on which the chosen contractor
    stood out: ∇_w Q = r × (v − mean(v)), with v the chosen row of the normalised, benefit-oriented matrix."""

    def __init__(self, learning_rate: float = 0.01, floor: float = 0.02) -> None:
        self.learning_rate = learning_rate
        self.floor = floor
        self.weights = np.full(len(CRITERIA), 1.0 / len(CRITERIA))

    def update(self, chosen_goodness: np.ndarray, reward: float) -> np.ndarray:
        gradient = float(np.clip(reward, -1.0, 1.0)) * (chosen_goodness - chosen_goodness.mean())
        # (13) w_i(t) = w_i(t−1) + η ∇_w Q(s_t, a_t, w)
        self.weights = normalised(np.maximum(self.weights + self.learning_rate * gradient, self.floor))
        return self.weights


def goodness(matrix: np.ndarray) -> np.ndarray:
    """Each criterion scaled to [0, 1] across alternatives, 1 = best (for cost criteria, the lowest)."""
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    span = np.where(high - low > 1e-12, high - low, 1.0)
    scaled = (matrix - low) / span
    return np.where(BENEFIT, scaled, 1.0 - scaled)


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


# ================================================================ the problem


@dataclass(frozen=True)
class DecisionConfig:
    """Every parameter of the decision; the defaults are the paper's."""

    epsilon: float = 0.1  # ε of Listing 2
    skill_threshold: float = 0.7  # θ_skill
    topsis_threshold: float = 0.6  # τ
    confidence_threshold: float = 0.8  # ρ_min
    learning_rate: float = 0.01  # η of eq. (13)
    market_beta: float = 0.7  # β of the dynamic weights
    correlation_alpha: float = 0.3  # α of eq. (11)
    calibration_lambda: float = 0.2  # λ of eq. (10), in [0.1, 0.3]
    exploration_confidence: float = 0.7  # the confidence Listing 2 assigns to an exploratory hire
    exploration_lambda: float = 1.0  # λ of eq. (20): dollars of learning value per unit of information
    ucb_exploration: float = math.sqrt(2.0)  # c of UCB1
    z: float = 1.96  # z_{α/2} of eq. (18)
    max_security_risk: float = 0.5  # the basic safety check that exploration keeps
    rational_guard: bool = True  # never outsource at a higher expected all-in cost than doing it locally


@dataclass(frozen=True)
class LocalOption:
    """Doing the subtask on the client's own machine."""

    cost_usd: float  # C_internal (calibrated)
    latency_s: float
    p_failure: float = 0.0  # chance the local result is unusable (a weak local model, say)
    available: bool = True  # False: the client cannot do it itself (missing skill or resource)


@dataclass
class Candidates:
    """Contractors that could take the subtask, as arrays with one entry per candidate."""

    ids: list[str]
    skills: list[str]
    compatibility: np.ndarray  # eq. (12)
    price: np.ndarray  # P_j(T)
    latency_s: np.ndarray
    p_security: np.ndarray  # eq. (15)
    p_quality: np.ndarray
    overhead: np.ndarray  # C_communication + C_verification + C_integration
    success_a: np.ndarray  # Beta posterior of success: a = α + successes
    success_b: np.ndarray  # b = β + failures
    good_decisions: np.ndarray  # past hires of this contractor judged good (for eq. 18)
    hires: np.ndarray  # past hires of this contractor

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in (
            "compatibility",
            "price",
            "latency_s",
            "p_security",
            "p_quality",
            "overhead",
            "success_a",
            "success_b",
            "good_decisions",
            "hires",
        ):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (n,) or not np.all(np.isfinite(value)):
                raise DecisionError(f"candidates.{name} must hold {n} finite numbers")
            setattr(self, name, value)
        if len(self.skills) != n:
            raise DecisionError("one skill per candidate")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def reliability(self) -> np.ndarray:
        """Posterior mean success probability (eq. 14 with decayed evidence, see shared.reputation)."""
        return self.success_a / (self.success_a + self.success_b)

    @classmethod
    def empty(cls) -> Candidates:
        zeros = np.zeros(0)
        return cls([], [], *([zeros] * 10))


@dataclass(frozen=True)
class CandidateOffer:
    """One contractor's skill as a candidate: how compatible (eq. 12) and on what terms."""

    contractor: str
    skill: str
    compatibility: float
    offer: Offer


@dataclass(frozen=True)
class Problem:
    """One subtask to place."""

    value_usd: float  # V_task: what the result is worth
    value_at_stake: float  # what a failed or bad result costs (redo plus delay); V_task of eq. (9)
    local: LocalOption
    candidates: Candidates
    signals: MarketSignals = field(default_factory=MarketSignals)
    deadline_s: float | None = None
    urgency: float = 0.5
    true_reliability: np.ndarray | None = None  # known to the oracle only

    @property
    def expected_local_cost(self) -> float:
        """C_internal plus the expected loss of a bad local result plus the local delay penalty."""
        delay = latency_penalty(self.local.latency_s, self.deadline_s, self.value_usd, self.urgency)
        return self.local.cost_usd + self.local.p_failure * self.value_at_stake + delay


# ================================================================ evaluation and the decision record


@dataclass
class Evaluation:
    """Everything a strategy decides from: the criteria matrix, weights and scores of the skill-qualified
    candidates (`eligible` indexes into the problem's candidates)."""

    problem: Problem
    eligible: np.ndarray
    matrix: np.ndarray  # rows: eligible candidates; columns: CRITERIA
    weights: np.ndarray
    scores: np.ndarray  # TOPSIS closeness of each eligible candidate
    confidence: np.ndarray  # eq. (18) of each eligible candidate


@dataclass
class Decision:
    action: Literal["local", "outsource"]
    strategy: str
    reason: str
    contractor: str | None = None
    skill: str | None = None
    exploration: bool = False
    confidence: float = 0.0
    topsis_score: float | None = None
    expected_local_cost: float = 0.0
    expected_external_cost: float | None = None
    candidate_index: int | None = None  # into the problem's candidates
    evaluation: Evaluation | None = field(default=None, repr=False)
    config: DecisionConfig | None = field(default=None, repr=False)

    def record(self, top: int = 10) -> dict[str, Any]:
        """The decision record: all costs, scores, weights and thresholds, the strategy and why."""
        out: dict[str, Any] = {
            "action": self.action,
            "contractor": self.contractor,
            "skill": self.skill,
            "strategy": self.strategy,
            "reason": self.reason,
            "exploration": self.exploration,
            "confidence": round(self.confidence, 6),
            "topsisScore": None if self.topsis_score is None else round(self.topsis_score, 6),
            "expectedLocalCostUsd": round(self.expected_local_cost, 6),
            "expectedExternalCostUsd": None
            if self.expected_external_cost is None
            else round(self.expected_external_cost, 6),
        }
        if self.config is not None:
            c = self.config
            out["thresholds"] = {
                "skill": c.skill_threshold,
                "topsis": c.topsis_threshold,
                "confidence": c.confidence_threshold,
                "epsilon": c.epsilon,
            }
        evaluation = self.evaluation
        if evaluation is not None:
            out["weights"] = dict(zip(CRITERIA, np.round(evaluation.weights, 6).tolist(), strict=True))
            candidates = evaluation.problem.candidates
            order = np.argsort(-evaluation.scores)[:top]
            out["candidatesConsidered"] = len(candidates)
            out["candidatesEligible"] = len(evaluation.eligible)
            out["candidates"] = [
                {
                    "contractor": candidates.ids[evaluation.eligible[i]],
                    "skill": candidates.skills[evaluation.eligible[i]],
                    "compatibility": round(float(candidates.compatibility[evaluation.eligible[i]]), 6),
                    "topsisScore": round(float(evaluation.scores[i]), 6),
                    "confidence": round(float(evaluation.confidence[i]), 6),
                    **{name: round(float(v), 6) for name, v in zip(CRITERIA, evaluation.matrix[i], strict=True)},
                }
                for i in order
            ]
        return out


def criteria_matrix(problem: Problem, rows: np.ndarray, reliability: np.ndarray) -> np.ndarray:
    """[C_external (eq. 6), reliability, latency, security risk] of the given candidates, with the given
    success probabilities (posterior means, optimistic bounds or samples)."""
    c = problem.candidates
    cost = (
        c.price[rows]
        + c.overhead[rows]
        + risk_cost(problem.value_at_stake, 1.0 - reliability, c.p_security[rows], c.p_quality[rows])
        + latency_penalty(c.latency_s[rows], problem.deadline_s, problem.value_usd, problem.urgency)
    )
    return np.stack([cost, reliability, c.latency_s[rows], c.p_security[rows]]).T  # a view of criteria × rows


class Strategy(Protocol):
    name: str

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Decision: ...


# ================================================================ the engine


class DecisionEngine:
    """Evaluates a problem (skill filter, costs, weights, TOPSIS, confidence) and lets a strategy choose;
    learns the historical weights and the decision record from outcomes. Deterministic under a seed."""

    def __init__(
        self,
        strategy: Strategy,
        config: DecisionConfig | None = None,
        seed: int = 0,
        reputation: ReputationBook | None = None,
    ) -> None:
        self.strategy = strategy
        self.config = config or DecisionConfig()
        self.rng = np.random.default_rng(seed)
        self.learner = WeightLearner(self.config.learning_rate)
        self.reputation = reputation or ReputationBook(ReputationConfig())
        self.hires: dict[str, int] = {}
        self.good_hires: dict[str, int] = {}

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

    def observe(self, decision: Decision, success: bool, actual_cost: float, at: float) -> None:
        """Feed back how a hire went: reputation, the record behind eq. (18), and the learned weights."""
        if decision.action != "outsource" or decision.contractor is None:
            return
        contractor = decision.contractor
        self.reputation.record(contractor, decision.skill or "", success, at)
        self.hires[contractor] = self.hires.get(contractor, 0) + 1
        local = decision.expected_local_cost
        good = success and actual_cost <= local
        self.good_hires[contractor] = self.good_hires.get(contractor, 0) + int(good)
        reward = (local - actual_cost) / local if success and local > 0 else -1.0
        self.learn(decision, reward)

    def evaluate(
        self, problem: Problem, reliability: np.ndarray | None = None, rows: np.ndarray | None = None
    ) -> Evaluation:
        candidates = problem.candidates
        if rows is None:
            rows = np.flatnonzero(candidates.compatibility >= self.config.skill_threshold)
        reliability = candidates.reliability[rows] if reliability is None else reliability
        matrix = criteria_matrix(problem, rows, reliability)
        if len(rows) == 0:
            return Evaluation(problem, rows, matrix, normalised(self.learner.weights), np.zeros(0), np.zeros(0))
        weights = market_weights(problem.signals, self.learner.weights, self.config.market_beta)
        weights = correlation_adjusted_weights(matrix, weights, self.config.correlation_alpha)
        good_share = np.divide(
            candidates.good_decisions[rows],
            candidates.hires[rows],
            out=np.zeros(len(rows)),
            where=candidates.hires[rows] > 0,
        )
        confidence = decision_confidence(good_share, candidates.hires[rows], self.config.z)
        return Evaluation(problem, rows, matrix, weights, topsis(matrix, weights, BENEFIT), confidence)

    def decide(self, problem: Problem) -> Decision:
        decision = self.strategy.choose(self.evaluate(problem), self)
        decision.expected_local_cost = problem.expected_local_cost
        decision.config = self.config
        return decision

    def learn(self, decision: Decision, reward: float) -> None:
        """Feed back one outsourcing outcome: reward in [−1, 1] (share of the local cost saved; −1 on failure)."""
        evaluation = decision.evaluation
        if decision.action != "outsource" or evaluation is None or decision.candidate_index is None:
            return
        position = np.flatnonzero(evaluation.eligible == decision.candidate_index)
        if len(position) == 0 or len(evaluation.eligible) < 2:
            return
        self.learner.update(goodness(evaluation.matrix)[position[0]], reward)

    # -------------------------------------------------------------- helpers for strategies

    def local(self, evaluation: Evaluation, strategy: str, reason: str) -> Decision:
        return Decision("local", strategy, reason, evaluation=evaluation)

    def hire(
        self,
        evaluation: Evaluation,
        strategy: str,
        position: int,
        reason: str,
        *,
        exploration: bool = False,
        confidence: float | None = None,
    ) -> Decision:
        index = int(evaluation.eligible[position])
        candidates = evaluation.problem.candidates
        return Decision(
            "outsource",
            strategy,
            reason,
            contractor=candidates.ids[index],
            skill=candidates.skills[index],
            exploration=exploration,
            confidence=float(evaluation.confidence[position] if confidence is None else confidence),
            topsis_score=float(evaluation.scores[position]),
            expected_external_cost=float(evaluation.matrix[position, 0]),
            candidate_index=index,
            evaluation=evaluation,
        )

    def affordable(self, evaluation: Evaluation, cost: np.ndarray) -> np.ndarray:
        """Positions whose expected all-in external cost beats doing the work locally (the rational guard);
        every position when the client cannot do the work itself or the guard is off."""
        problem = evaluation.problem
        if not self.config.rational_guard or not problem.local.available:
            return np.arange(len(cost))
        return np.flatnonzero(cost < problem.expected_local_cost)

    def no_candidate(self, evaluation: Evaluation, strategy: str) -> Decision | None:
        """The answer when no candidate passes θ_skill: local, or, when the client cannot do the work, the most
        compatible contractor regardless."""
        if len(evaluation.eligible):
            return None
        problem = evaluation.problem
        if problem.local.available or len(problem.candidates) == 0:
            reason = "no contractor passes the skill threshold" if len(problem.candidates) else "no contractors"
            return self.local(evaluation, strategy, reason)
        best = np.array([int(np.argmax(problem.candidates.compatibility))])
        forced = self.evaluate(problem, rows=best)
        return self.hire(
            forced,
            strategy,
            0,
            "cannot run locally; no contractor passes the skill threshold, hiring the most compatible one",
        )


# ================================================================ strategies


class LocalOnly:
    """The baseline: everything runs on the client's machine."""

    name = "local-only"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Decision:
        return engine.local(evaluation, self.name, "baseline: always local")


def _paper_rule(evaluation: Evaluation, engine: DecisionEngine, name: str) -> Decision:
    """Listing 1: OUTSOURCE(best) if TOPSIS_best > τ and confidence > ρ_min, else LOCAL (plus the guard)."""
    if (forced := engine.no_candidate(evaluation, name)) is not None:
        return forced
    config = engine.config
    best = int(np.argmax(evaluation.scores))
    score, confidence = evaluation.scores[best], evaluation.confidence[best]
    if score <= config.topsis_threshold or confidence <= config.confidence_threshold:
        if not evaluation.problem.local.available:
            return engine.hire(evaluation, name, best, "cannot run locally: hiring the TOPSIS best")
        return engine.local(
            evaluation,
            name,
            f"TOPSIS best {score:.3f} (τ {config.topsis_threshold}) or confidence "
            f"{confidence:.3f} (ρ_min {config.confidence_threshold}) too low",
        )
    if best not in engine.affordable(evaluation, evaluation.matrix[:, 0]):
        return engine.local(
            evaluation, name, "rational guard: the best contractor's expected all-in cost exceeds the local cost"
        )
    return engine.hire(evaluation, name, best, f"TOPSIS {score:.3f} > τ and confidence {confidence:.3f} > ρ_min")


class PaperDeterministic:
    name = "paper-deterministic"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Decision:
        return _paper_rule(evaluation, engine, self.name)


class PaperEpsilonGreedy:
    """Listing 2: with probability ε, hire a random contractor (skill filter bypassed, safety kept, confidence
    0.7, marked as exploration); otherwise the deterministic rule. The guard counts the learning value of
    eq. (20): V_exploration = C_external − λ·I_learning, with I_learning the posterior standard deviation of
    the contractor's success probability times the value at stake (what knowing it better is worth)."""

    name = "paper-epsilon-greedy"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Decision:
        problem, config = evaluation.problem, engine.config
        if len(problem.candidates) and engine.rng.random() < config.epsilon:
            safe = np.flatnonzero(problem.candidates.p_security <= config.max_security_risk)
            if len(safe):
                pick = int(engine.rng.choice(safe))
                single = engine.evaluate(problem, rows=np.array([pick]))
                c = problem.candidates
                a, b = c.success_a[pick], c.success_b[pick]
                information = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))) * problem.value_at_stake
                # (20) V_exploration = C_external + λ × I_learning (learning credited against the cost)
                value = single.matrix[0, 0] - config.exploration_lambda * information
                if len(engine.affordable(single, np.array([value]))):
                    return engine.hire(
                        single,
                        self.name,
                        0,
                        "ε-exploration",
                        exploration=True,
                        confidence=config.exploration_confidence,
                    )
        return _paper_rule(evaluation, engine, self.name)


def _choose_by_estimate(
    evaluation: Evaluation, engine: DecisionEngine, name: str, reliability: np.ndarray, what: str
) -> Decision:
    """Re-evaluate the eligible candidates with `reliability` (optimistic or sampled), keep those the guard
    allows, hire the TOPSIS best; marked exploration when it differs from the choice under posterior means."""
    if (forced := engine.no_candidate(evaluation, name)) is not None:
        return forced
    estimate = engine.evaluate(evaluation.problem, reliability=reliability, rows=evaluation.eligible)
    allowed = engine.affordable(estimate, estimate.matrix[:, 0])
    if len(allowed) == 0:
        return engine.local(estimate, name, f"rational guard: no contractor's {what} expected cost beats local")
    position = int(allowed[np.argmax(estimate.scores[allowed])])
    greedy_allowed = engine.affordable(evaluation, evaluation.matrix[:, 0])
    greedy = int(greedy_allowed[np.argmax(evaluation.scores[greedy_allowed])]) if len(greedy_allowed) else None
    return engine.hire(
        estimate,
        name,
        position,
        f"TOPSIS best by {what} reliability among contractors that beat the local cost",
        exploration=position != greedy,
    )


class UCB1:
    """Optimism under uncertainty: each contractor's success probability is taken at its UCB1 bound,
    p̂ + c √(ln N / n); a contractor never hired counts as perfect until tried (no cold start)."""

    name = "ucb1"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Decision:
        c = evaluation.problem.candidates
        rows = evaluation.eligible
        hires = c.hires[rows]
        total = max(float(c.hires.sum()), 1.0)
        bonus = np.divide(
            engine.config.ucb_exploration * math.sqrt(math.log(total + 1.0)),
            np.sqrt(hires),
            out=np.full(len(rows), np.inf),
            where=hires > 0,
        )
        optimistic = np.minimum(c.reliability[rows] + bonus, 1.0)
        return _choose_by_estimate(evaluation, engine, self.name, optimistic, "optimistic (UCB1)")


class ThompsonSampling:
    """Each contractor's success probability is drawn from its Beta posterior; the draw decides."""

    name = "thompson"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Decision:
        c = evaluation.problem.candidates
        rows = evaluation.eligible
        sampled = engine.rng.beta(c.success_a[rows], c.success_b[rows]) if len(rows) else np.zeros(0)
        return _choose_by_estimate(evaluation, engine, self.name, sampled, "sampled (Thompson)")


class Oracle:
    """Hindsight: knows every contractor's true success probability and takes the lowest expected cost among
    local and all candidates (skill filter included). For evaluation only: regret is measured against it."""

    name = "oracle"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Decision:
        problem = evaluation.problem
        if problem.true_reliability is None:
            raise DecisionError("the oracle needs the true reliabilities")
        if (forced := engine.no_candidate(evaluation, self.name)) is not None:
            return forced
        truth = engine.evaluate(
            problem, reliability=np.asarray(problem.true_reliability)[evaluation.eligible], rows=evaluation.eligible
        )
        best = int(np.argmin(truth.matrix[:, 0]))
        if problem.local.available and truth.matrix[best, 0] >= problem.expected_local_cost:
            return engine.local(truth, self.name, "local is cheapest in hindsight")
        return engine.hire(truth, self.name, best, "cheapest in hindsight")


STRATEGIES: dict[str, type] = {
    s.name: s for s in (LocalOnly, PaperDeterministic, PaperEpsilonGreedy, UCB1, ThompsonSampling, Oracle)
}


def make_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise DecisionError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()
