"""How the client learns who is good at what: every quality signal, weighed and recorded per (agent, skill) in
one competence book (`shared.economics.reputation.ReputationBook`), for contractors and the client's own worker
alike, and written into the subtask's record where it came from.

The signals and what each weighs (an observation of weight w and grade g adds w·g successes and w·(1 − g)
failures to the agent's Beta posterior on that skill):

| signal | when | grade | weight |
| --- | --- | --- | --- |
| probe | a gold item, graded against its known answer | the share right | 1 |
| check | a check a wrong answer fails (a recomputed number); any failed check | 1 passed, 0 failed | 1 |
| agreement | several agents on one item (Dawid-Skene for labels, the median for numbers) | P(right) | 0.5 |
| feedback | the user or calling agent grades a delivered subtask | as given | 2 |
| outcome | an agent gave no answer (an error, a timeout, a refusal) | 0 | 1 |
| charge | a charge above the price list | 0 | 1 |

A well-formed answer that no check can fault is not evidence either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from client_agent.state import Outcome, SubtaskRun
from shared.economics.reputation import Competence, ReputationBook

WEIGHTS = {"probe": 1.0, "check": 1.0, "agreement": 0.5, "feedback": 2.0, "outcome": 1.0, "charge": 1.0, "judge": 1.0}


@dataclass(frozen=True)
class QualityConfig:
    """The client's quality signals and what it may spend on them."""

    probes: bool = True
    probe_rate_min: float = 0.03  # the chance of a probe beside a subtask, for an agent the book is sure of ...
    probe_rate_max: float = 0.6  # ... and for one it knows nothing of (scaled by the posterior's deviation)
    probe_budget_share: float = 0.25  # probes cost at most this share of all the client has spent ...
    probe_budget_floor_usd: float = 0.05  # ... plus this much (so that a new client can start learning)
    probes_per_subtask: int = 2  # at most this many probes start beside one subtask
    max_probes_in_flight: int = 4
    agreement_rate: float = 0.1  # the share of label and number subtasks also sent to other agents
    agreement_agents: int = 3  # how many agents answer such an item (the first included)


@dataclass
class Spend:
    """Money spent on work and on learning, for the probe budget and the running account."""

    work_usd: float = 0.0
    probe_usd: float = 0.0
    agreement_usd: float = 0.0
    probes: int = 0
    agreements: int = 0
    by_agent: dict[str, float] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {
            "workUsd": round(self.work_usd, 6),
            "probeUsd": round(self.probe_usd, 6),
            "agreementUsd": round(self.agreement_usd, 6),
            "probes": self.probes,
            "agreements": self.agreements,
        }

    @classmethod
    def restore(cls, raw: dict[str, Any]) -> Spend:
        return cls(
            float(raw.get("workUsd", 0.0)),
            float(raw.get("probeUsd", 0.0)),
            float(raw.get("agreementUsd", 0.0)),
            int(raw.get("probes", 0)),
            int(raw.get("agreements", 0)),
        )


class Quality:
    def __init__(self, reputation: ReputationBook, config: QualityConfig) -> None:
        self.reputation = reputation
        self.config = config
        self.spend = Spend()

    def record(
        self,
        agent: str,
        skill: str,
        grade: float,
        source: str,
        run: SubtaskRun | None = None,
        cost_usd: float = 0.0,
        detail: str = "",
    ) -> None:
        """One quality signal about `agent` on `skill`, into the book and into `run`'s record."""
        weight = WEIGHTS[source]
        self.reputation.record(agent, skill, grade, time.time(), weight, source)
        if run is not None:
            signal = {"kind": source, "agent": agent, "grade": round(grade, 4), "weight": weight}
            if cost_usd:
                signal["costUsd"] = round(cost_usd, 6)
            if detail:
                signal["detail"] = detail[:300]
            run.state.signals.append(signal)

    def learn(self, run: SubtaskRun, outcome: Outcome) -> None:
        """What one answered (or unanswered) attempt at `run` says of the agent that made it."""
        skill, agent = run.spec.skill or "llm", outcome.where
        verdict = outcome.verdict
        if verdict is None:  # no answer: an error, a timeout, a refusal
            self.record(agent, skill, 0.0, "outcome", run, detail=outcome.reason)
        elif not verdict.passed:
            self.record(agent, skill, 0.0, "check", run, detail=verdict.reason)
        elif verdict.graded:
            self.record(agent, skill, 1.0, "check", run, detail="; ".join(verdict.checks))
        if outcome.overcharge:
            self.record(agent, skill, 0.0, "charge", run, detail=outcome.overcharge)

    def competence(self, agent: str, skill: str) -> Competence:
        return self.reputation.competence(agent, skill, time.time())

    def deviation(self, agent: str, skill: str) -> float:
        return self.reputation.deviation(agent, skill, time.time())

    def probe_allowance(self) -> float:
        """What probes may still cost now."""
        spend = self.spend
        cap = self.config.probe_budget_share * (spend.work_usd + spend.probe_usd + spend.agreement_usd)
        return cap + self.config.probe_budget_floor_usd - spend.probe_usd
