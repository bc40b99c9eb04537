"""The criteria's weights: market-adaptive (β on the market's signals), correlation-adjusted (11), and learned
from outcomes (13).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from shared.economics.decision.topsis import CRITERIA, REDUCTIONS


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
    adjusted = np.empty(weights.shape)
    _masked_correlation_weights(np.ascontiguousarray(np.swapaxes(matrix, 1, 2)), weights, alpha, mask, adjusted)
    return normalised(adjusted)


@numba.njit(cache=True, nogil=True, fastmath=REDUCTIONS)
def _masked_correlation_weights(
    columns: np.ndarray, weights: np.ndarray, alpha: float, mask: np.ndarray, adjusted: np.ndarray
) -> None:  # pragma: no cover - compiled (run through masked_correlation_weights)
    """Per problem of `columns` (B, c, n): Pearson's ρ between the criteria over the masked candidates (0 for a
    criterion that does not vary, and with fewer than three candidates), and the weights of (11), unnormalised.
    Free of branches on the mask (a candidate out of it counts 0), so that the sums over candidates vectorise."""
    batch, criteria, n = columns.shape
    taking_part, mean, spread = np.empty(n), np.empty(criteria), np.empty(criteria)
    products = np.empty((criteria, criteria))  # Σ over the candidates of the centred criteria's products
    for b in range(batch):
        count = 0.0
        for j in range(n):
            taking_part[j] = 1.0 if mask[b, j] else 0.0
            count += taking_part[j]
        for c in range(criteria):
            total, largest = 0.0, 0.0
            for j in range(n):
                total += columns[b, c, j] * taking_part[j]
                largest = max(largest, abs(columns[b, c, j]) * taking_part[j])
            mean[c] = total / max(count, 1.0)
            spread[c] = largest  # for now, the scale the spread is compared with
        for c in range(criteria):
            for other in range(c, criteria):
                product, mean_c, mean_other = 0.0, mean[c], mean[other]
                for j in range(n):
                    product += (columns[b, c, j] - mean_c) * (columns[b, other, j] - mean_other) * taking_part[j]
                products[c, other] = products[other, c] = product
        for c in range(criteria):
            varying = count >= 3 and np.sqrt(products[c, c]) > 1e-12 * max(spread[c], 1e-300)
            spread[c] = np.sqrt(products[c, c]) if varying else 0.0
        for c in range(criteria):
            correlated = 0.0  # Σ_{j≠i} |ρ_ij|; a criterion that does not vary correlates with nothing
            for other in range(criteria):
                if other != c and spread[c] > 0.0 and spread[other] > 0.0:
                    correlated += abs(products[c, other] / (spread[c] * spread[other]))
            # (11) w'_i = w_i × (1 − α Σ_{j≠i} |ρ_ij|)
            adjusted[b, c] = weights[b, c] * max(1.0 - alpha * correlated, 0.0)


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


def outcome_reward(success: Any, actual_cost: Any, local_cost: Any) -> Any:
    """The reward of eq. (13): the share of the local cost saved, −1 for a failure (floats or arrays)."""
    success, actual, local = (np.asarray(v, dtype=np.float64) for v in (success, actual_cost, local_cost))
    saved = (local - actual) / np.where(local > 0, local, 1.0)
    reward = np.where((success > 0) & (local > 0), saved, -1.0)
    return float(reward) if reward.ndim == 0 else reward
