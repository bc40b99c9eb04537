"""The economic decision (paper sections III.F and IV): TOPSIS over [cost, reliability, latency, security risk]
with market-adaptive, correlation-adjusted, learned weights; decision strategies from the paper's deterministic
rule to UCB1 and Thompson sampling; a hindsight oracle for evaluation.

Everything works on a batch of B problems over one pool of n candidates at once (arrays of shape (B, n)), so
the simulator decides a whole market step in one call; the client decides one problem (B = 1). No I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol

import numpy as np

from shared.cost_model import Offer, TaskProfile, communication_cost, latency_penalty, risk_cost
from shared.reputation import ReputationBook, ReputationConfig

CRITERIA = ("cost", "reliability", "latency", "security_risk")
BENEFIT = np.array([False, True, False, False])
NO_SCORE = -1.0  # the TOPSIS score of a candidate that is not eligible


class DecisionError(ValueError):
    """A decision input that has no defined answer (shapes that do not fit, NaN, negative weights)."""


# ================================================================ TOPSIS


def masked_topsis(matrix: np.ndarray, weights: np.ndarray, benefit: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """TOPSIS closeness for a batch: matrix (B, n, c), weights (B, c) summing to 1, mask (B, n) of the
    alternatives that take part; the others score NO_SCORE. Inputs are trusted (see `topsis`)."""
    columns = np.ascontiguousarray(np.swapaxes(matrix, 1, 2))  # (B, c, n): reductions run over contiguous memory
    m = mask[:, None, :]
    cells = np.where(m, columns, 0.0)
    norms = np.sqrt(np.einsum("bcn,bcn->bc", cells, cells))
    scale = np.divide(weights, norms, out=np.zeros_like(weights), where=norms > 0)
    weighted = cells * scale[:, :, None]  # vector-normalised, then weighted
    high = np.where(m, weighted, -np.inf).max(axis=2, initial=-np.inf)
    low = np.where(m, weighted, np.inf).min(axis=2, initial=np.inf)
    high, low = np.where(np.isfinite(high), high, 0.0), np.where(np.isfinite(low), low, 0.0)
    to_ideal = weighted - np.where(benefit, high, low)[:, :, None]
    to_anti = weighted - np.where(benefit, low, high)[:, :, None]
    d_plus = np.sqrt(np.einsum("bcn,bcn->bn", to_ideal, to_ideal))
    d_minus = np.sqrt(np.einsum("bcn,bcn->bn", to_anti, to_anti))
    total = d_plus + d_minus
    scores = np.divide(d_minus, total, out=np.full(total.shape, 0.5), where=total > 1e-15)
    return np.where(mask, scores, NO_SCORE)


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
    mask = np.ones((1, matrix.shape[0]), dtype=bool)
    return masked_topsis(matrix[None], (weights / weights.sum())[None], benefit, mask)[0]


# ================================================================ weights


@dataclass(frozen=True)
class MarketSignals:
    """The market's state, each in [0, 1] (floats, or arrays with one value per problem of a batch), for the
    dynamic weights: how tight prices are, how often hires fail, how urgent the task is, how sensitive its data is.
    """

    market_pressure: Any = 0.25
    failure_rate: Any = 0.25
    task_urgency: Any = 0.25
    risk_level: Any = 0.25

    def vector(self, batch: int = 1) -> np.ndarray:
        """(B, 4) in CRITERIA order."""
        columns = [self.market_pressure, self.failure_rate, self.task_urgency, self.risk_level]
        return np.clip(
            np.stack([np.broadcast_to(np.asarray(c, dtype=np.float64), (batch,)) for c in columns], 1), 0.0, 1.0
        )


def normalised(weights: np.ndarray) -> np.ndarray:
    """Non-negative weights summing to 1 along the last axis (equal weights where all are zero)."""
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = weights.sum(axis=-1, keepdims=True)
    return np.divide(weights, total, out=np.full(weights.shape, 1.0 / weights.shape[-1]), where=total > 0)


def market_weights(signals: MarketSignals, historical: np.ndarray, beta: float, batch: int | None = None) -> np.ndarray:
    """w_cost = β·MarketPressure + (1−β)·Hist(cost), and likewise reliability ← FailureRate, latency ←
    TaskUrgency, security ← RiskLevel; normalised. One row per problem; a single vector when `batch` is None."""
    vector = signals.vector(batch or 1)
    weights = normalised(beta * vector + (1.0 - beta) * normalised(historical))
    return weights if batch is not None else weights[0]


def masked_correlation_weights(matrix: np.ndarray, weights: np.ndarray, alpha: float, mask: np.ndarray) -> np.ndarray:
    """Eq. (11) for a batch: matrix (B, n, c), weights (B, c), mask (B, n)."""
    columns = np.ascontiguousarray(np.swapaxes(matrix, 1, 2))  # (B, c, n)
    m = mask[:, None, :]
    count = mask.sum(axis=1)
    mean = np.where(m, columns, 0.0).sum(axis=2) / np.maximum(count, 1)[:, None]
    centred = np.where(m, columns - mean[:, :, None], 0.0)
    spread = np.sqrt(np.einsum("bcn,bcn->bc", centred, centred))
    scale = np.maximum(np.abs(np.where(m, columns, 0.0)).max(axis=2, initial=0.0), 1e-300)
    varying = (spread > 1e-12 * scale) & (count >= 3)[:, None]
    standard = np.divide(centred, spread[:, :, None], out=np.zeros_like(centred), where=varying[:, :, None])
    rho = np.einsum("bin,bjn->bij", standard, standard)  # Pearson's ρ between varying criteria, 0 otherwise
    rho[:, np.arange(rho.shape[1]), np.arange(rho.shape[1])] = 0.0
    # (11) w'_i = w_i × (1 − α Σ_{j≠i} |ρ_ij|)
    return normalised(weights * np.clip(1.0 - alpha * np.abs(rho).sum(axis=2), 0.0, None))


def correlation_adjusted_weights(matrix: np.ndarray, weights: np.ndarray, alpha: float) -> np.ndarray:
    """Weights of criteria that move together are shrunk, so correlated criteria are not counted twice.
    Correlations need at least three alternatives; columns that do not vary correlate with nothing."""
    matrix = np.asarray(matrix, dtype=np.float64)
    mask = np.ones((1, matrix.shape[0]), dtype=bool)
    return masked_correlation_weights(matrix[None], np.asarray(weights, dtype=np.float64)[None], alpha, mask)[0]


class WeightLearner:
    """The historical weights Hist(·), learned from outcomes.

    Eq. (13) leaves Q undefined. Our reading, a policy-gradient step: after a hire, the reward r in [−1, 1]
    (the share of the local cost saved; −1 for a failure) credits the criteria on which the chosen contractor
    stood out: ∇_w Q = r × (v − mean(v)), with v the chosen row of the normalised, benefit-oriented matrix."""

    def __init__(self, learning_rate: float = 0.01, floor: float = 0.02) -> None:
        self.learning_rate = learning_rate
        self.floor = floor
        self.weights = np.full(len(CRITERIA), 1.0 / len(CRITERIA))

    def step(self, gradient: np.ndarray) -> np.ndarray:
        # (13) w_i(t) = w_i(t−1) + η ∇_w Q(s_t, a_t, w)
        self.weights = normalised(np.maximum(self.weights + self.learning_rate * gradient, self.floor))
        return self.weights


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


def _batch(value: Any, batch: int, dtype: Any = np.float64) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=dtype), (batch,)).copy()


@dataclass(frozen=True)
class LocalOption:
    """Doing the subtask on the client's own machine (floats, or arrays with one value per problem)."""

    cost_usd: Any  # C_internal (calibrated)
    latency_s: Any
    p_failure: Any = 0.0  # chance the local result is unusable (a weak local model, say)
    available: Any = True  # False: the client cannot do it itself (missing skill or resource)


CANDIDATE_ARRAYS = (
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
)


@dataclass
class Candidates:
    """Contractors that could take the subtask: arrays of shape (B, n), one row per problem of a batch (1-D
    arrays are one problem)."""

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
    available: np.ndarray | None = None  # False where a contractor cannot take work now

    def __post_init__(self) -> None:
        n = len(self.ids)
        batch = max((np.ndim(getattr(self, f)) == 2 and np.shape(getattr(self, f))[0]) or 1 for f in CANDIDATE_ARRAYS)
        for name in CANDIDATE_ARRAYS:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape not in ((n,), (1, n), (batch, n)) or not np.all(np.isfinite(value)):
                raise DecisionError(f"candidates.{name} must hold {n} finite numbers per problem")
            setattr(self, name, np.broadcast_to(np.atleast_2d(value), (batch, n)))
        available = np.ones((batch, n), dtype=bool) if self.available is None else self.available
        self.available = np.broadcast_to(np.atleast_2d(np.asarray(available, dtype=bool)), (batch, n))
        if len(self.skills) != n:
            raise DecisionError("one skill per candidate")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def batch(self) -> int:
        return self.compatibility.shape[0]

    @property
    def reliability(self) -> np.ndarray:
        """Posterior mean success probability (eq. 14 with decayed evidence, see shared.reputation)."""
        return self.success_a / (self.success_a + self.success_b)


@dataclass(frozen=True)
class CandidateOffer:
    """One contractor's skill as a candidate: how compatible (eq. 12) and on what terms."""

    contractor: str
    skill: str
    compatibility: float
    offer: Offer


@dataclass(frozen=True)
class Problem:
    """Subtasks to place: one, or a batch of B (then every per-problem field may be an array of B values)."""

    value_usd: Any  # V_task: what the result is worth
    value_at_stake: Any  # what a failed or bad result costs (redo plus delay); V_task of eq. (9)
    local: LocalOption
    candidates: Candidates
    signals: MarketSignals = field(default_factory=MarketSignals)
    deadline_s: Any = None  # None (or NaN) for no deadline
    urgency: Any = 0.5
    true_reliability: np.ndarray | None = None  # known to the oracle only, (B, n)
    stream: Any = 0  # which learner's weights each problem uses (the simulator's run), (B,)

    @property
    def batch(self) -> int:
        return self.candidates.batch

    def column(self, value: Any, dtype: Any = np.float64) -> np.ndarray:
        return _batch(value, self.batch, dtype)

    def latency_penalty(self, latency_s: np.ndarray) -> np.ndarray:
        """The delay penalty of latencies of shape (B, ...) against each problem's deadline."""
        shape = (-1,) + (1,) * (np.ndim(latency_s) - 1)
        deadline = self.column(np.nan if self.deadline_s is None else self.deadline_s).reshape(shape)
        stake = (self.column(self.value_usd) * self.column(self.urgency)).reshape(shape)
        return np.asarray(latency_penalty(latency_s, deadline, stake, 1.0))

    @cached_property
    def expected_local_cost(self) -> np.ndarray:
        """C_internal plus the expected loss of a bad local result plus the local delay penalty, per problem."""
        delay = self.latency_penalty(self.column(self.local.latency_s))
        return (
            self.column(self.local.cost_usd)
            + self.column(self.local.p_failure) * self.column(self.value_at_stake)
            + delay
        )

    @cached_property
    def local_available(self) -> np.ndarray:
        return self.column(self.local.available, bool)


# ================================================================ evaluation, choices and the decision record


@dataclass
class Evaluation:
    """What a strategy decides from, per problem and candidate: eligibility (θ_skill, availability), the criteria
    matrix (B, n, 4), the weights (B, 4), TOPSIS scores among the eligible and the confidence of eq. (18)."""

    problem: Problem
    eligible: np.ndarray
    matrix: np.ndarray
    weights: np.ndarray
    scores: np.ndarray
    confidence: np.ndarray


REASONS = (
    "baseline: always local",
    "no contractors",
    "no contractor passes the skill threshold",
    "cannot run locally; no contractor passes the skill threshold, hiring the most compatible one",
    "TOPSIS best {score:.3f} (τ {tau}) or confidence {confidence:.3f} (ρ_min {rho}) too low",
    "cannot run locally: hiring the TOPSIS best",
    "rational guard: the best contractor's expected all-in cost exceeds the local cost",
    "TOPSIS {score:.3f} > τ and confidence {confidence:.3f} > ρ_min",
    "ε-exploration",
    "rational guard: no contractor's {estimate} expected cost beats local",
    "TOPSIS best by {estimate} reliability among contractors that beat the local cost",
    "local is cheapest in hindsight",
    "cheapest in hindsight",
)
(
    ALWAYS_LOCAL,
    NO_CONTRACTORS,
    NO_SKILLED,
    FORCED,
    BELOW_THRESHOLDS,
    CANNOT_LOCAL,
    GUARD,
    PAPER_HIRE,
    EXPLORE,
    GUARD_ESTIMATE,
    ESTIMATE_HIRE,
    ORACLE_LOCAL,
    ORACLE_HIRE,
) = range(len(REASONS))


@dataclass
class Choice:
    """A strategy's answer for a batch: `hire` is the chosen candidate per problem, −1 for local; `score`,
    `cost` and `confidence` are those of the chosen candidate (NaN for local)."""

    strategy: str
    evaluation: Evaluation
    hire: np.ndarray
    reason: np.ndarray
    exploration: np.ndarray
    confidence: np.ndarray
    score: np.ndarray
    cost: np.ndarray
    estimate: str = ""

    @property
    def outsourced(self) -> np.ndarray:
        return self.hire >= 0


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
            candidates = evaluation.problem.candidates
            out["weights"] = dict(zip(CRITERIA, np.round(evaluation.weights[0], 6).tolist(), strict=True))
            eligible = np.flatnonzero(evaluation.eligible[0])
            order = eligible[np.argsort(-evaluation.scores[0, eligible], kind="stable")][:top]
            out["candidatesConsidered"] = len(candidates)
            out["candidatesEligible"] = len(eligible)
            out["candidates"] = [
                {
                    "contractor": candidates.ids[i],
                    "skill": candidates.skills[i],
                    "compatibility": round(float(candidates.compatibility[0, i]), 6),
                    "topsisScore": round(float(evaluation.scores[0, i]), 6),
                    "confidence": round(float(evaluation.confidence[0, i]), 6),
                    **{name: round(float(v), 6) for name, v in zip(CRITERIA, evaluation.matrix[0, i], strict=True)},
                }
                for i in order
            ]
        return out


def criteria_matrix(problem: Problem, reliability: np.ndarray) -> np.ndarray:
    """(B, n, 4): [C_external (eq. 6), reliability, latency, security risk] of every candidate, with the given
    success probabilities (posterior means, optimistic bounds, samples or the truth)."""
    c = problem.candidates
    stake = problem.column(problem.value_at_stake)[:, None]
    cost = (
        c.price
        + c.overhead
        + risk_cost(stake, 1.0 - reliability, c.p_security, c.p_quality)
        + problem.latency_penalty(c.latency_s)
    )
    return np.swapaxes(np.stack([cost, reliability, c.latency_s, c.p_security], axis=1), 1, 2)  # a (B, n, 4) view


def best_among(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, the index of the highest score among the allowed columns; −1 where none is allowed."""
    best = np.argmax(np.where(allowed, scores, -np.inf), axis=1)
    return np.where(allowed.any(axis=1), best, -1)


class Strategy(Protocol):
    name: str

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
        return decision

    def observe(self, decision: Decision, success: bool, actual_cost: float, at: float) -> None:
        """Feed back how a hire went: reputation, the record behind eq. (18), and the learned weights."""
        if decision.action != "outsource" or decision.contractor is None or decision.candidate_index is None:
            return
        contractor = decision.contractor
        self.reputation.record(contractor, decision.skill or "", success, at)
        self.hires[contractor] = self.hires.get(contractor, 0) + 1
        local = decision.expected_local_cost
        self.good_hires[contractor] = self.good_hires.get(contractor, 0) + int(success and actual_cost <= local)
        if decision.evaluation is not None:
            self.learn(decision.evaluation, 0, decision.candidate_index, outcome_reward(success, actual_cost, local))

    # -------------------------------------------------------------- batches (the simulator)

    def evaluate(
        self, problem: Problem, reliability: np.ndarray | None = None, eligible: np.ndarray | None = None
    ) -> Evaluation:
        c = problem.candidates
        if eligible is None:
            eligible = (c.compatibility >= self.config.skill_threshold) & c.available
        reliability = c.reliability if reliability is None else reliability
        matrix = criteria_matrix(problem, reliability)
        historical = np.stack([learner.weights for learner in self.learners])[problem.column(problem.stream, np.int64)]
        weights = market_weights(problem.signals, historical, self.config.market_beta, batch=c.batch)
        weights = masked_correlation_weights(matrix, weights, self.config.correlation_alpha, eligible)
        good_share = np.divide(c.good_decisions, c.hires, out=np.zeros(c.hires.shape), where=c.hires > 0)
        confidence = decision_confidence(good_share, c.hires, self.config.z)
        return Evaluation(
            problem, eligible, matrix, weights, masked_topsis(matrix, weights, BENEFIT, eligible), confidence
        )

    def choose(self, problem: Problem) -> Choice:
        evaluation = self.evaluate(problem)
        if len(problem.candidates) == 0:  # nothing to hire: every problem stays local
            batch = problem.batch
            nothing = np.full(batch, np.nan)
            reason = ALWAYS_LOCAL if isinstance(self.strategy, LocalOnly) else NO_CONTRACTORS
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

    def affordable(self, problem: Problem, cost: np.ndarray) -> np.ndarray:
        """(B, n): whose expected all-in external cost beats doing the work locally (the rational guard);
        everyone where the client cannot do the work itself or the guard is off."""
        if not self.config.rational_guard:
            return np.ones(cost.shape, dtype=bool)
        return (cost < problem.expected_local_cost[:, None]) | ~problem.local_available[:, None]

    def choice(
        self,
        strategy: str,
        evaluation: Evaluation,
        hire: np.ndarray,
        reason: np.ndarray,
        exploration: np.ndarray | None = None,
        confidence: np.ndarray | None = None,
        estimate: str = "",
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
        )


def outcome_reward(success: Any, actual_cost: Any, local_cost: Any) -> Any:
    """The reward of eq. (13): the share of the local cost saved, −1 for a failure (floats or arrays)."""
    success, actual, local = (np.asarray(v, dtype=np.float64) for v in (success, actual_cost, local_cost))
    saved = (local - actual) / np.where(local > 0, local, 1.0)
    reward = np.where((success > 0) & (local > 0), saved, -1.0)
    return float(reward) if reward.ndim == 0 else reward


# ================================================================ strategies


class LocalOnly:
    """The baseline: everything runs on the client's machine."""

    name = "local-only"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        batch = evaluation.scores.shape[0]
        choice = engine.choice(self.name, evaluation, np.full(batch, -1), np.full(batch, ALWAYS_LOCAL))
        choice.hire[:] = -1  # even where local is impossible: the baseline does not hire
        choice.reason[:] = ALWAYS_LOCAL
        return choice


def _paper_rule(evaluation: Evaluation, engine: DecisionEngine, name: str) -> Choice:
    """Listing 1: OUTSOURCE(best) if TOPSIS_best > τ and confidence > ρ_min, else LOCAL (plus the guard)."""
    config, problem = engine.config, evaluation.problem
    rows = np.arange(evaluation.scores.shape[0])
    best = best_among(evaluation.scores, evaluation.eligible)
    picked = np.maximum(best, 0)
    low = (evaluation.scores[rows, picked] <= config.topsis_threshold) | (
        evaluation.confidence[rows, picked] <= config.confidence_threshold
    )
    local_ok = problem.local_available
    afford = engine.affordable(problem, evaluation.matrix[..., 0])[rows, picked]
    hire = np.where((low & ~local_ok) | (~low & afford), best, -1)
    reason = np.select([low & local_ok, low, ~afford], [BELOW_THRESHOLDS, CANNOT_LOCAL, GUARD], PAPER_HIRE)
    return engine.choice(name, evaluation, hire, reason)


class PaperDeterministic:
    name = "paper-deterministic"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        return _paper_rule(evaluation, engine, self.name)


class PaperEpsilonGreedy:
    """Listing 2: with probability ε, hire a random contractor (skill filter bypassed, safety kept, confidence
    0.7, marked as exploration); otherwise the deterministic rule. The guard counts the learning value of
    eq. (20): V_exploration = C_external − λ·I_learning, with I_learning the posterior standard deviation of
    the contractor's success probability times the value at stake (what knowing it better is worth)."""

    name = "paper-epsilon-greedy"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        config, problem = engine.config, evaluation.problem
        c = problem.candidates
        batch = evaluation.scores.shape[0]
        rows = np.arange(batch)
        explore = engine.rng.random(batch) < config.epsilon
        safe = c.available & (c.p_security <= config.max_security_risk)
        pick = np.argmax(np.where(safe, engine.rng.random(safe.shape), -1.0), axis=1)
        a, b = c.success_a[rows, pick], c.success_b[rows, pick]
        information = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))) * problem.column(problem.value_at_stake)
        # (20) V_exploration = C_external + λ × I_learning (learning credited against the cost)
        value = evaluation.matrix[rows, pick, 0] - config.exploration_lambda * information
        explore &= safe.any(axis=1) & engine.affordable(problem, value[:, None])[:, 0]
        base = _paper_rule(evaluation, engine, self.name)
        if not explore.any():
            return base
        base.hire = np.where(explore, pick, base.hire)
        base.reason = np.where(explore, EXPLORE, base.reason)
        base.exploration = base.exploration | explore
        base.confidence = np.where(explore, config.exploration_confidence, base.confidence)
        base.score = np.where(explore, 0.5, base.score)  # TOPSIS over the one explored contractor
        base.cost = np.where(explore, evaluation.matrix[rows, pick, 0], base.cost)
        return base


def _choose_by_estimate(
    evaluation: Evaluation, engine: DecisionEngine, name: str, reliability: np.ndarray, estimate: str
) -> Choice:
    """Re-evaluate the eligible candidates with `reliability` (optimistic or sampled), keep those the guard
    allows, hire the TOPSIS best; marked exploration when it differs from the choice under posterior means."""
    problem = evaluation.problem
    estimated = engine.evaluate(problem, reliability=reliability, eligible=evaluation.eligible)
    pick = best_among(estimated.scores, estimated.eligible & engine.affordable(problem, estimated.matrix[..., 0]))
    greedy = best_among(evaluation.scores, evaluation.eligible & engine.affordable(problem, evaluation.matrix[..., 0]))
    reason = np.where(pick >= 0, ESTIMATE_HIRE, GUARD_ESTIMATE)
    return engine.choice(name, estimated, pick, reason, exploration=(pick >= 0) & (pick != greedy), estimate=estimate)


class UCB1:
    """Optimism under uncertainty: each contractor's success probability is taken at its UCB1 bound,
    p̂ + c √(ln N / n); a contractor never hired counts as perfect until tried (no cold start)."""

    name = "ucb1"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        c = evaluation.problem.candidates
        total = np.maximum(c.hires.sum(axis=1, keepdims=True), 1.0)
        bonus = np.divide(
            engine.config.ucb_exploration * np.sqrt(np.log(total + 1.0)),
            np.sqrt(c.hires),
            out=np.full(c.hires.shape, np.inf),
            where=c.hires > 0,
        )
        optimistic = np.minimum(c.reliability + bonus, 1.0)
        return _choose_by_estimate(evaluation, engine, self.name, optimistic, "optimistic (UCB1)")


class ThompsonSampling:
    """Each contractor's success probability is drawn from its Beta posterior; the draw decides."""

    name = "thompson"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        c = evaluation.problem.candidates
        sampled = engine.rng.beta(c.success_a, c.success_b)
        return _choose_by_estimate(evaluation, engine, self.name, sampled, "sampled (Thompson)")


class Oracle:
    """Hindsight: knows every contractor's true success probability and takes the lowest expected cost among
    local and all candidates (skill filter included). For evaluation only: regret is measured against it."""

    name = "oracle"

    def choose(self, evaluation: Evaluation, engine: DecisionEngine) -> Choice:
        problem = evaluation.problem
        if problem.true_reliability is None:
            raise DecisionError("the oracle needs the true reliabilities")
        truth = np.broadcast_to(np.asarray(problem.true_reliability, dtype=np.float64), evaluation.scores.shape)
        known = engine.evaluate(problem, reliability=truth, eligible=evaluation.eligible)
        rows = np.arange(len(truth))
        best = best_among(-known.matrix[..., 0], known.eligible)
        cheaper = known.matrix[rows, np.maximum(best, 0), 0] < problem.expected_local_cost
        hire = np.where(cheaper | ~problem.local_available, best, -1)
        return engine.choice(self.name, known, hire, np.where(hire >= 0, ORACLE_HIRE, ORACLE_LOCAL))


STRATEGIES: dict[str, type] = {
    s.name: s for s in (LocalOnly, PaperDeterministic, PaperEpsilonGreedy, UCB1, ThompsonSampling, Oracle)
}


def make_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise DecisionError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()
