"""Reputation and trust (paper sections III.A.5 and IV): reliability with a Beta prior and decay, security risk.

Time is in seconds (any epoch, as long as one book uses one); decay rates are per month of 30 days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SECONDS_PER_MONTH = 30 * 24 * 3600.0


def decay_factor(elapsed_s: Any, decay_per_month: float) -> Any:
    """How much of a piece of evidence remains after `elapsed_s` seconds (floats or numpy arrays)."""
    return np.exp(-decay_per_month * np.maximum(elapsed_s, 0.0) / SECONDS_PER_MONTH)


def paper_reliability(
    successes: float,
    total: float,
    months_since_last: float,
    prior_success: float = 1.0,
    prior_failure: float = 1.0,
    decay_per_month: float = 0.1,
) -> float:
    """Eq. (14) as printed. Its decay multiplies the mean, so a contractor left idle drifts toward reliability 0,
    however good its record; `Evidence` decays the evidence instead (see there)."""
    # (14) R = (α_success + n_success) / (α_success + β_failure + n_total) × e^(−λ t_decay)
    mean = (prior_success + successes) / (prior_success + prior_failure + total)
    return mean * math.exp(-decay_per_month * months_since_last)


@dataclass
class Evidence:
    """Exponentially decayed success and failure counts for one contractor on one skill.

    Reliability is the posterior mean of Beta(α + s, β + f) with s and f decayed by e^(−λ t) (the rate of
    eq. 14): old evidence weighs less, and with no recent evidence the estimate returns to the prior mean.
    """

    successes: float = 0.0
    failures: float = 0.0
    observations: int = 0
    updated_at: float | None = None

    def decayed(self, at: float, decay_per_month: float) -> tuple[float, float]:
        if self.updated_at is None:
            return 0.0, 0.0
        factor = float(decay_factor(at - self.updated_at, decay_per_month))
        return self.successes * factor, self.failures * factor

    def record(self, success: bool, at: float, decay_per_month: float) -> None:
        self.successes, self.failures = self.decayed(at, decay_per_month)
        if success:
            self.successes += 1.0
        else:
            self.failures += 1.0
        self.observations += 1
        self.updated_at = at


@dataclass(frozen=True)
class ReputationConfig:
    prior_success: float = 1.0  # α_success
    prior_failure: float = 1.0  # β_failure
    decay_per_month: float = 0.1  # λ of eq. (14)


class ReputationBook:
    """Track records per (contractor, skill); a contractor's overall record pools its skills."""

    def __init__(self, config: ReputationConfig | None = None) -> None:
        self.config = config or ReputationConfig()
        self._evidence: dict[str, dict[str, Evidence]] = {}

    def record(self, contractor: str, skill: str, success: bool, at: float) -> None:
        evidence = self._evidence.setdefault(contractor, {}).setdefault(skill, Evidence())
        evidence.record(success, at, self.config.decay_per_month)

    def _records(self, contractor: str, skill: str | None) -> list[Evidence]:
        by_skill = self._evidence.get(contractor, {})
        if skill is None:
            return list(by_skill.values())
        return [by_skill[skill]] if skill in by_skill else []

    def posterior(self, contractor: str, skill: str | None, at: float) -> tuple[float, float]:
        """Beta(a, b) of the contractor's success probability on `skill` (on all skills when None)."""
        successes = failures = 0.0
        for evidence in self._records(contractor, skill):
            s, f = evidence.decayed(at, self.config.decay_per_month)
            successes, failures = successes + s, failures + f
        return self.config.prior_success + successes, self.config.prior_failure + failures

    def reliability(self, contractor: str, skill: str | None, at: float) -> float:
        a, b = self.posterior(contractor, skill, at)
        return a / (a + b)

    def observations(self, contractor: str, skill: str | None = None) -> int:
        return sum(e.observations for e in self._records(contractor, skill))

    def snapshot(self) -> dict[str, dict[str, dict[str, float]]]:
        return {
            who: {
                what: {
                    "successes": e.successes,
                    "failures": e.failures,
                    "observations": e.observations,
                    "updatedAt": e.updated_at if e.updated_at is not None else -1.0,
                }
                for what, e in by_skill.items()
            }
            for who, by_skill in self._evidence.items()
        }

    def restore(self, snapshot: dict[str, dict[str, dict[str, float]]]) -> None:
        for who, by_skill in snapshot.items():
            for what, row in by_skill.items():
                updated = row["updatedAt"]
                self._evidence.setdefault(who, {})[what] = Evidence(
                    row["successes"], row["failures"], int(row["observations"]), None if updated < 0 else updated
                )


# How much of a breach probability applies, by the data's sensitivity and the channel that carries it.
SENSITIVITY_WEIGHT = {"public": 0.1, "internal": 0.4, "confidential": 0.8, "restricted": 1.0}
CHANNEL_EXPOSURE = {"plaintext": 1.0, "tls": 0.5, "e2e": 0.1}


def security_risk(breach_probabilities: Any, sensitivity: Any = "internal", channel: str = "tls") -> Any:
    """The chance that hiring leaks the task's data. Each breach path i (the contractor, the transport, the
    storage) has probability P_breach,i; what applies of it grows with the data's sensitivity and shrinks with
    a protected channel (the paper says 'scaled', without factors: ours are the two tables above).

    `breach_probabilities` may be an array with the paths on its last axis; `sensitivity` a name, or an array of
    names (or weights) that broadcasts against the other axes."""
    names = np.asarray(sensitivity)
    weight = np.vectorize(SENSITIVITY_WEIGHT.__getitem__)(names) if names.dtype.kind in "US" else names
    scale = np.asarray(weight, dtype=np.float64) * CHANNEL_EXPOSURE[channel]
    paths = np.clip(np.asarray(breach_probabilities, dtype=np.float64), 0.0, 1.0)
    # (15) Risk_security = 1 − Π_i (1 − P_breach,i)
    risk = 1.0 - np.prod(1.0 - paths * scale[..., None], axis=-1)
    return float(risk) if np.ndim(risk) == 0 else risk
