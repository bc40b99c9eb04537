"""Reputation and trust (paper sections III.A.5 and IV): competence per agent and skill (reliability, eq. 14, over
graded evidence) with a Beta prior and decay, and security risk (15).

Time is in seconds (any epoch, as long as one book uses one); decay rates are per month of 30 days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import beta as beta_distribution

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
    """Exponentially decayed evidence of quality for one agent on one skill.

    Each observation is a grade in [0, 1] (right/wrong is 1/0) with a weight (how much the signal says): it adds
    `weight × grade` to the successes and `weight × (1 − grade)` to the failures. The estimate is the posterior mean
    of Beta(α + s, β + f) with s and f decayed by e^(−λ t) (the rate of eq. 14): old evidence weighs less, and
    with no recent evidence the estimate returns to the prior mean. `sources` counts observations by signal
    (probe, agreement, feedback, check, judge, outcome, charge)."""

    successes: float = 0.0
    failures: float = 0.0
    observations: int = 0
    updated_at: float | None = None
    sources: dict[str, int] = field(default_factory=dict)

    def decayed(self, at: float, decay_per_month: float) -> tuple[float, float]:
        if self.updated_at is None:
            return 0.0, 0.0
        factor = float(decay_factor(at - self.updated_at, decay_per_month))
        return self.successes * factor, self.failures * factor

    def record(
        self, grade: float, at: float, decay_per_month: float, weight: float = 1.0, source: str = "outcome"
    ) -> None:
        grade = min(max(float(grade), 0.0), 1.0)
        self.successes, self.failures = self.decayed(at, decay_per_month)
        self.successes += weight * grade
        self.failures += weight * (1.0 - grade)
        self.observations += 1
        self.sources[source] = self.sources.get(source, 0) + 1
        self.updated_at = at


@dataclass(frozen=True)
class ReputationConfig:
    prior_success: float = 1.0  # α_success
    prior_failure: float = 1.0  # β_failure
    decay_per_month: float = 0.1  # λ of eq. (14)
    attested_item_weight: float = 0.5  # what one item an attestor graded weighs beside one of our own observations


@dataclass(frozen=True)
class Competence:
    """What the book knows of one agent on one skill: the expected quality, a credible interval, the evidence."""

    quality: float
    low: float
    high: float
    observations: int
    sources: dict[str, int]

    def wire(self) -> dict[str, Any]:
        return {
            "quality": round(self.quality, 4),
            "interval": [round(self.low, 4), round(self.high, 4)],
            "observations": self.observations,
            "evidence": dict(self.sources),
        }


class ReputationBook:
    """Competence per (agent, skill): a Beta posterior over the quality of the agent's answers on that skill, for
    contractors and the client's own worker alike; an agent's overall record pools its skills."""

    def __init__(self, config: ReputationConfig | None = None) -> None:
        self.config = config or ReputationConfig()
        self._evidence: dict[str, dict[str, Evidence]] = {}
        self._attested: dict[str, dict[str, tuple[float, float]]] = {}  # agent -> skill -> (successes, failures)

    def certify(self, agent: str, measured: dict[str, tuple[float, int]]) -> None:
        """What a trusted attestor measured of the agent, skill -> (score, items), as evidence beside the book's
        own: `attested_item_weight` per item, not decayed (a certificate expires instead). It replaces the
        agent's earlier certificate: a renewed certificate is not new evidence on top of the old one."""
        weight = self.config.attested_item_weight
        self._attested[agent] = {
            skill: (weight * n * score, weight * n * (1.0 - score)) for skill, (score, n) in measured.items()
        }

    def _attested_counts(self, agent: str, skill: str | None) -> list[tuple[float, float]]:
        by_skill = self._attested.get(agent, {})
        if skill is None:
            return list(by_skill.values())
        return [by_skill[skill]] if skill in by_skill else []

    def record(
        self, agent: str, skill: str, success: bool | float, at: float, weight: float = 1.0, source: str = "outcome"
    ) -> None:
        """One observation: `success` is right/wrong or a grade in [0, 1]; `weight` how much it says."""
        evidence = self._evidence.setdefault(agent, {}).setdefault(skill, Evidence())
        evidence.record(float(success), at, self.config.decay_per_month, weight, source)

    def _records(self, agent: str, skill: str | None) -> list[Evidence]:
        by_skill = self._evidence.get(agent, {})
        if skill is None:
            return list(by_skill.values())
        return [by_skill[skill]] if skill in by_skill else []

    def posterior(self, agent: str, skill: str | None, at: float) -> tuple[float, float]:
        """Beta(a, b) of the agent's quality on `skill` (on all skills when None)."""
        successes = failures = 0.0
        counts = [e.decayed(at, self.config.decay_per_month) for e in self._records(agent, skill)]
        for s, f in counts + self._attested_counts(agent, skill):
            successes, failures = successes + s, failures + f
        return self.config.prior_success + successes, self.config.prior_failure + failures

    def reliability(self, agent: str, skill: str | None, at: float) -> float:
        a, b = self.posterior(agent, skill, at)
        return a / (a + b)

    def deviation(self, agent: str, skill: str | None, at: float) -> float:
        """The posterior standard deviation of the quality: how unsure the book is."""
        a, b = self.posterior(agent, skill, at)
        return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))

    def competence(self, agent: str, skill: str | None, at: float, level: float = 0.9) -> Competence:
        a, b = self.posterior(agent, skill, at)
        tail = (1.0 - level) / 2.0
        low, high = beta_distribution.ppf([tail, 1.0 - tail], a, b)
        sources: dict[str, int] = {}
        for evidence in self._records(agent, skill):
            for name, count in evidence.sources.items():
                sources[name] = sources.get(name, 0) + count
        if attested := self._attested_counts(agent, skill):
            sources["attestation"] = len(attested)
        return Competence(a / (a + b), float(low), float(high), self.observations(agent, skill), sources)

    def skills(self, agent: str) -> list[str]:
        return list(self._evidence.get(agent, {}))

    def agents(self) -> list[str]:
        return list(self._evidence)

    def observations(self, agent: str, skill: str | None = None) -> int:
        return sum(e.observations for e in self._records(agent, skill))

    def snapshot(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            who: {
                what: {
                    "successes": e.successes,
                    "failures": e.failures,
                    "observations": e.observations,
                    "updatedAt": e.updated_at if e.updated_at is not None else -1.0,
                    "sources": dict(e.sources),
                }
                for what, e in by_skill.items()
            }
            for who, by_skill in self._evidence.items()
        }

    def restore(self, snapshot: dict[str, dict[str, dict[str, Any]]]) -> None:
        for who, by_skill in snapshot.items():
            for what, row in by_skill.items():
                updated = row["updatedAt"]
                self._evidence.setdefault(who, {})[what] = Evidence(
                    row["successes"],
                    row["failures"],
                    int(row["observations"]),
                    None if updated < 0 else updated,
                    dict(row.get("sources") or {}),
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
    if isinstance(sensitivity, str):  # one name (the client's case): no array of names to map
        weight: Any = SENSITIVITY_WEIGHT[sensitivity]
    else:
        names = np.asarray(sensitivity)
        weight = np.vectorize(SENSITIVITY_WEIGHT.__getitem__)(names) if names.dtype.kind in "US" else names
    scale = np.asarray(weight, dtype=np.float64) * CHANNEL_EXPOSURE[channel]
    paths = np.clip(np.asarray(breach_probabilities, dtype=np.float64), 0.0, 1.0)
    # (15) Risk_security = 1 − Π_i (1 − P_breach,i)
    risk = 1.0 - np.prod(1.0 - paths * scale[..., None], axis=-1)
    return float(risk) if np.ndim(risk) == 0 else risk
