"""What a decision is about and what it answers: its parameters, the local option, the candidates, the problem
(a batch of B problems over one pool of n candidates), the evaluation, a strategy's choice and the decision
record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numba
import numpy as np
from numba.extending import register_jitable

from shared.economics.cost_model import Offer, latency_penalty, risk_cost
from shared.economics.decision.topsis import CRITERIA, DecisionError
from shared.economics.decision.weights import MarketSignals

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
    """`value` (a scalar or B values) as B values; read-only (a view where no conversion was needed)."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), (batch,))


@dataclass(frozen=True)
class LocalOption:
    """Doing the subtask on the client's own machine (floats, or arrays with one value per problem)."""

    cost_usd: Any  # C_internal (calibrated)
    latency_s: Any
    p_failure: Any = 0.0  # chance the local result is unusable (a weak local model, say)
    available: Any = True  # False: the client cannot do it itself (missing skill or resource)
    # the Beta posterior of the local worker's quality, when it is learnt like any contractor's (the client): then
    # UCB1 and Thompson sampling explore the local option too, and compare like with like
    quality_a: Any = None
    quality_b: Any = None


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
    available: Any = None  # False where a contractor cannot take work now; (B, n) bool once built

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
        """Posterior mean success probability (eq. 14 with decayed evidence, see shared.economics.reputation)."""
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

    def local_cost(self, p_failure: Any) -> np.ndarray:
        """C_internal plus the loss of a bad local result at `p_failure` plus the local delay penalty, per problem."""
        delay = self.latency_penalty(self.column(self.local.latency_s))
        return self.column(self.local.cost_usd) + self.column(p_failure) * self.column(self.value_at_stake) + delay

    @cached_property
    def expected_local_cost(self) -> np.ndarray:
        """The local cost at the expected chance of a bad local result."""
        return self.local_cost(self.local.p_failure)

    @cached_property
    def fixed_cost(self) -> np.ndarray:
        """(B, n): the parts of each candidate's external cost (6) that no estimate of its reliability changes:
        price, overhead and the delay penalty against the problem's deadline."""
        return self.candidates.price + self.candidates.overhead + self.latency_penalty(self.candidates.latency_s)

    @property
    def local_learnt(self) -> bool:
        return self.local.quality_a is not None and self.local.quality_b is not None

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
    local_cost: np.ndarray | None = None  # the local option's cost under the same estimate, when it has its own

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
    exploration_cost: float = 0.0  # expected cost of this choice minus that of the best one under posterior means
    local_cost_estimated: float | None = None  # the local cost under the strategy's estimate (the candidates' too)
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
            "explorationCostUsd": round(self.exploration_cost, 6),
        }
        if self.local_cost_estimated is not None:
            out["estimatedLocalCostUsd"] = round(self.local_cost_estimated, 6)
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
    columns = np.empty((c.batch, len(CRITERIA), len(c)))
    stake = problem.column(problem.value_at_stake)
    _criteria(problem.fixed_cost, stake, reliability, c.p_security, c.p_quality, c.latency_s, columns)
    return np.swapaxes(columns, 1, 2)  # a (B, n, 4) view


register_jitable(risk_cost)  # eq. (9), the same function, compiled into the kernel below


@numba.njit(cache=True, nogil=True)
def _criteria(
    fixed_cost: np.ndarray,
    stake: np.ndarray,
    reliability: np.ndarray,
    p_security: np.ndarray,
    p_quality: np.ndarray,
    latency_s: np.ndarray,
    columns: np.ndarray,
) -> None:  # pragma: no cover - compiled (run through criteria_matrix)
    """The criteria of every candidate written into `columns` (B, 4, n) in one pass (no temporary arrays)."""
    batch, n = fixed_cost.shape
    for b in range(batch):
        for j in range(n):
            risk = risk_cost(stake[b], 1.0 - reliability[b, j], p_security[b, j], p_quality[b, j])
            columns[b, 0, j] = fixed_cost[b, j] + risk  # (6) C_external
            columns[b, 1, j] = reliability[b, j]
            columns[b, 2, j] = latency_s[b, j]
            columns[b, 3, j] = p_security[b, j]


def best_among(scores: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, the index of the highest score among the allowed columns; −1 where none is allowed."""
    best = np.argmax(np.where(allowed, scores, -np.inf), axis=1)
    return np.where(allowed.any(axis=1), best, -1)
