"""The criteria's weights: market-adaptive (β on the market's signals), correlation-adjusted (11), and learned
from outcomes (13).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.economics.decision.topsis import CRITERIA, masked_columns


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
    cells = masked_columns(matrix, mask)  # (B, c, n)
    m = mask[:, None, :]
    count = mask.sum(axis=1)
    mean = cells.sum(axis=2) / np.maximum(count, 1)[:, None]
    centred = np.where(m, cells - mean[:, :, None], 0.0)
    spread = np.sqrt(np.einsum("bcn,bcn->bc", centred, centred))
    scale = np.maximum(np.abs(cells).max(axis=2, initial=0.0), 1e-300)
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


def outcome_reward(success: Any, actual_cost: Any, local_cost: Any) -> Any:
    """The reward of eq. (13): the share of the local cost saved, −1 for a failure (floats or arrays)."""
    success, actual, local = (np.asarray(v, dtype=np.float64) for v in (success, actual_cost, local_cost))
    saved = (local - actual) / np.where(local > 0, local, 1.0)
    reward = np.where((success > 0) & (local > 0), saved, -1.0)
    return float(reward) if reward.ndim == 0 else reward
