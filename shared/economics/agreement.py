"""Competence without labels: what agents' agreement on the same items says about each of them.

- Labels: Dawid and Skene (1979, "Maximum likelihood estimation of observer error-rates using the EM algorithm",
  Applied Statistics 28(1)): EM alternates between the items' true labels (from votes weighted by each agent's
  error rates) and each agent's error rates (from those labels). We use its "one-coin" form (one accuracy per
  agent, errors spread evenly over the other labels): with the few hundred items a client sees, full confusion
  matrices settle in poor local optima (measured: a 95 %-accurate agent estimated at 86 %), the one-coin form
  does not.
- Numbers: a robust consensus (the median); an agent agrees when its value lies within a relative tolerance.

Agreement among equally bad agents is not truth: it is one signal among gold probes, checks and feedback.
No I/O, numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MISSING = -1


@dataclass(frozen=True)
class LabelConsensus:
    posterior: np.ndarray  # (items, classes): the probability of each true label
    accuracy: np.ndarray  # (agents,): the chance that each agent's label is right
    confusion: np.ndarray  # (agents, classes, classes): P(agent says l | truth is k) under the one-coin model


def dawid_skene(labels: np.ndarray, classes: int, iterations: int = 50, smoothing: float = 1.0) -> LabelConsensus:
    """`labels`: (items, agents) label indices in [0, classes), MISSING where an agent did not answer an item."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 2 or classes < 2:
        raise ValueError("labels must be (items, agents) with at least two classes")
    if np.any((labels < MISSING) | (labels >= classes)):
        raise ValueError(f"labels must lie in [0, {classes}) or be {MISSING}")
    items, agents = labels.shape
    answered = labels != MISSING
    onehot = np.zeros((items, agents, classes))
    rows, cols = np.nonzero(answered)
    onehot[rows, cols, labels[rows, cols]] = 1.0
    votes = onehot.sum(axis=1) + 1e-9  # majority vote to start
    posterior = votes / votes.sum(axis=1, keepdims=True)
    confusion = np.full((agents, classes, classes), 1.0 / classes)
    accuracy = np.full(agents, 0.7)
    given = np.maximum(answered.sum(axis=0), 1)
    for _ in range(iterations):
        prior = (posterior.sum(axis=0) + smoothing) / (items + classes * smoothing)
        # M step: each agent's accuracy, the expected share of its answers that are the true label (a Beta(2, 1)
        # prior keeps a few items from saying 0 or 1)
        right = np.einsum("ik,iak->a", posterior, onehot)
        accuracy = np.clip((right + 2 * smoothing) / (given + 3 * smoothing), 1e-3, 1 - 1e-3)
        # E step: posterior[i, k] ∝ prior[k] Π_a (accuracy_a if a said k, else (1 − accuracy_a) / (K − 1))
        said = np.log(accuracy)[None, :, None] * onehot
        other = np.log((1 - accuracy) / (classes - 1))[None, :, None] * (answered[:, :, None] & (onehot == 0))
        log_likelihood = (said + other).sum(axis=1) + np.log(prior)
        updated = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
        updated /= updated.sum(axis=1, keepdims=True)
        converged = np.allclose(updated, posterior, atol=1e-6)
        posterior = updated
        if converged:
            break
    off = (1 - accuracy) / (classes - 1)
    confusion = off[:, None, None] * (1 - np.eye(classes)) + accuracy[:, None, None] * np.eye(classes)
    return LabelConsensus(posterior, accuracy, confusion)


@dataclass(frozen=True)
class NumberConsensus:
    value: float  # the median
    agrees: np.ndarray  # (agents,) bool: within the tolerance of the median
    decided: bool  # False when two agents disagree: nothing says which is right


def number_consensus(values: np.ndarray, rel_tol: float, abs_tol: float = 1e-9) -> NumberConsensus:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2 or not np.all(np.isfinite(values)):
        raise ValueError("a consensus needs two or more finite values")
    median = float(np.median(values))
    agrees = np.abs(values - median) <= rel_tol * abs(median) + abs_tol
    if len(values) == 2 and not agrees.all():
        agrees = np.abs(values - values[::-1]) <= rel_tol * np.abs(values[::-1]) + abs_tol
        return NumberConsensus(median, agrees, decided=bool(agrees.all()))
    return NumberConsensus(median, agrees, decided=bool(agrees.sum() * 2 > len(values)))
