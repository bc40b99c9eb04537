"""The decision rule of the paper's public reference code (mbhatt1/COALESCE, src/decision/decision_engine.py),
re-implemented to run beside ours on the same tasks: so that both are scored with the same honest metric.

What it does, as that code does it: skill compatibility 0.3 Jaccard + 0.5 a lookup table + 0.2 a fixed 0.8;
with probability 0.1, hire a random contractor among all (no filter, no guard, not recorded in its history);
otherwise TOPSIS (min-max normalised) over the contractors with compatibility ≥ 0.7, with fixed base weights
[0.4, 0.25, 0.2, 0.15] nudged by budget, latency and sensitivity; hire the best if its score > 0.6 and the
"confidence" > 0.8, where confidence is 0.8 for the first 10 decisions and afterwards 1 − 2 min(p, 1 − p) / √n × 1.96
with p the share of its last 50 decisions whose TOPSIS score exceeded 0.7 (local decisions count as 0). It knows
each contractor's true reliability (there is nothing to learn). Its cost and latency bugs are not copied: it sees
correct local costs, like ours.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from shared.economics.cost_model import latency_penalty
from simulator.market import Market, Step

BASE_WEIGHTS = np.array([0.4, 0.25, 0.2, 0.15])


def minmax_topsis(matrix: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The reference's TOPSIS: min-max normalisation, columns [cost, reliability, latency, security]."""
    low, high = matrix.min(axis=0), matrix.max(axis=0)
    normalised = np.divide(matrix - low, high - low, out=np.zeros_like(matrix), where=high > low)
    weighted = normalised * weights
    benefit = np.array([False, True, False, True])
    ideal = np.where(benefit, weighted.max(axis=0), weighted.min(axis=0))
    anti = np.where(benefit, weighted.min(axis=0), weighted.max(axis=0))
    d_plus = np.linalg.norm(weighted - ideal, axis=1)
    d_minus = np.linalg.norm(weighted - anti, axis=1)
    total = d_plus + d_minus
    return np.divide(d_minus, total, out=np.full(len(matrix), 0.5), where=total > 0)


class ReferenceRule:
    strategy = "reference-code"

    def __init__(self, market: Market, seed: int) -> None:
        self.market = market
        self.rng = np.random.default_rng([seed, 3])
        self.history: list[float] = []  # TOPSIS scores of its recorded decisions (0 for local)

    def confidence(self) -> float:
        if len(self.history) < 10:
            return 0.8
        recent = self.history[-50:]
        p = sum(score > 0.7 for score in recent) / len(recent)
        return min(1.0, max(0.0, 1 - (2 * min(p, 1 - p) / np.sqrt(len(recent))) * 1.96))

    def decide(self, step: Step) -> SimpleNamespace:
        rows = len(step)
        hire = np.full(rows, -1)
        exploration = np.zeros(rows, dtype=bool)
        score = np.full(rows, np.nan)
        reliability = self.market.reliability
        security = 1.0 - (0.02 + 0.1 * (1.0 - reliability))
        risk = self.market.reference_risk(step)
        for i in range(rows):
            compatible = 0.3 * step.ontological[i] + 0.5 * step.embedding[i] + 0.2 * 0.8
            if self.rng.random() < 0.1:
                hire[i], exploration[i], score[i] = self.rng.integers(len(reliability)), True, 0.5
                continue
            eligible = np.flatnonzero(compatible >= 0.7)
            if len(eligible) == 0:
                self.history.append(0.0)
                continue
            cost = (
                step.price[i]
                + step.overhead[i]
                + risk[i]
                + latency_penalty(step.latency_s[i], step.deadline_s[i], step.value[i], step.urgency[i])
            )
            matrix = np.column_stack([cost, reliability, step.latency_s[i] / 60.0, security])[eligible]
            weights = BASE_WEIGHTS.copy()
            if step.budget[i] < step.value[i] * 0.3:
                weights[0] *= 1.2
            if step.deadline_s[i] < 30 * 60:
                weights[2] *= 1.3
            if step.risk_level[i] >= 0.8:
                weights[3] *= 1.4
            scores = minmax_topsis(matrix, weights / weights.sum())
            best = int(np.argmax(scores))
            if scores[best] > 0.6 and self.confidence() > 0.8:
                hire[i], score[i] = eligible[best], scores[best]
                self.history.append(float(scores[best]))
            else:
                self.history.append(0.0)
        return SimpleNamespace(hire=hire, exploration=exploration, score=score)

    def learn(self, step: Step, rows: np.ndarray, hires: np.ndarray, success: np.ndarray, cost: np.ndarray) -> None:
        """It learns nothing from outcomes: it reads contractors' true reliability."""
