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


def dawid_skene(
    labels: np.ndarray,
    classes: int,
    iterations: int = 50,
    smoothing: float = 1.0,
    known_accuracy: np.ndarray | None = None,
    known_strength: np.ndarray | None = None,
) -> LabelConsensus:
    """`labels`: (items, agents) label indices in [0, classes), MISSING where an agent did not answer an item.

    Agreement among two agents cannot say which one is right when they differ; what is known of them from known
    answers (gold probes, feedback) can: `known_accuracy` (agents,) enters each agent's accuracy as a Beta prior
    worth `known_strength` (agents,) items. Without it the prior is Beta(2, 1) (agents are better than chance)."""
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
    prior_right, prior_wrong = np.full(agents, 2.0 * smoothing), np.full(agents, smoothing)
    if known_accuracy is not None and known_strength is not None:
        strength = np.asarray(known_strength, dtype=np.float64)
        known = np.clip(np.asarray(known_accuracy, dtype=np.float64), 1e-3, 1 - 1e-3)
        prior_right = np.where(strength > 0, strength * known, prior_right)
        prior_wrong = np.where(strength > 0, strength * (1 - known), prior_wrong)
    for _ in range(iterations):
        prior = (posterior.sum(axis=0) + smoothing) / (items + classes * smoothing)
        # M step: each agent's accuracy, the expected share of its answers that are the true label, with its prior
        right = np.einsum("ik,iak->a", posterior, onehot)
        accuracy = np.clip((right + prior_right) / (given + prior_right + prior_wrong), 1e-3, 1 - 1e-3)
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
    value: np.ndarray  # the median of each number
    agrees: np.ndarray  # (agents,) bool: every number within the tolerance of the median
    decided: bool  # a majority agrees (two agents: both); otherwise nothing says which is right


def number_consensus(values: np.ndarray, rel_tol: float, abs_tol: float = 1e-9) -> NumberConsensus:
    """`values`: (agents,) or (agents, numbers), each agent's answer. An agent agrees when each of its numbers lies
    within `rel_tol` of that number's median (with two agents, of the other's)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    if values.ndim != 2 or len(values) < 2 or not np.all(np.isfinite(values)):
        raise ValueError("a consensus needs two or more agents' finite numbers")
    median = np.median(values, axis=0)
    reference = values[::-1] if len(values) == 2 else np.broadcast_to(median, values.shape)
    agrees = np.all(np.abs(values - reference) <= rel_tol * np.abs(reference) + abs_tol, axis=1)
    return NumberConsensus(median, agrees, decided=bool(agrees.sum() * 2 > len(values)))
