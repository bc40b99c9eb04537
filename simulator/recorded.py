"""The live market, as measured: the agents of `coalesce market validate`'s recording (quality per skill, what
they charged, how long they took, how often the client's checks let a wrong answer through), read for the
simulator's `local-market`, so that simulated and live results can be set side by side and the same agents
simulated at scales the machine cannot run live.

Reads the recording's JSON directly (no service code), the held-out evaluation items only.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

RECORDING = Path(__file__).resolve().parents[1] / "docs" / "results" / "validation" / "recording.json"
LOCAL = "local"  # the client's own worker in a recording
TASK_TYPE_OF_SKILL = {
    "financial-document-analysis": "financial_rag",
    "risk-assessment": "risk_assessment",
    "sentiment-analysis": "sentiment_analysis",
    "portfolio-optimisation": "portfolio_optimization",
}


@dataclass(frozen=True)
class Measured:
    """One agent on one skill, summed over its recorded attempts."""

    attempts: int
    answered: int
    passed: int  # answers the client's check let through
    grade_passed: float  # the grades (against the truth) of those answers, summed
    cost_usd: float  # means over the attempts
    seconds: float
    latency_s: float  # what the decision assumed
    compatibility: float

    @property
    def reliability(self) -> float:
        """The chance an answer comes back at all."""
        return self.answered / self.attempts

    @property
    def pass_rate(self) -> float:
        """The chance the client's check lets an answer through."""
        return self.passed / self.answered if self.answered else 0.0

    @property
    def quality(self) -> float:
        """The mean grade of an answer that gets through."""
        return self.grade_passed / self.passed if self.passed else 0.0

    @property
    def delivered(self) -> float:
        """The mean grade the client is left with, per attempt (what the replay's `delivered_grade` averages)."""
        return self.grade_passed / self.attempts


@dataclass(frozen=True)
class LiveMarket:
    agents: tuple[str, ...]  # the contractors' names, in the recording's order
    measured: dict[str, dict[str, Measured]]  # agent name -> task type -> its record (absent: it lacks the skill)
    local: dict[str, Measured]  # the client's own worker, per task type
    value_usd: dict[str, float]  # per task type
    mix: dict[str, float]  # the share of each task type among the items
    detection: dict[str, float]  # per task type: the share of wrong answers (grade < 1) the check caught
    source: str


def measure(attempts: list[dict[str, Any]]) -> Measured:
    passed = [a for a in attempts if a["answered"] and a["passed"]]
    count = len(attempts)
    return Measured(
        attempts=count,
        answered=sum(bool(a["answered"]) for a in attempts),
        passed=len(passed),
        grade_passed=sum(float(a["grade"]) for a in passed),
        cost_usd=sum(float(a["cost_usd"]) for a in attempts) / count,
        seconds=sum(float(a["seconds"]) for a in attempts) / count,
        latency_s=sum(float(a["latency_s"]) for a in attempts) / count,
        compatibility=sum(float(a["compatibility"]) for a in attempts) / count,
    )


def caught_share(attempts: list[dict[str, Any]]) -> tuple[int, int]:
    """(wrong answers the check failed, wrong answers) among answered attempts."""
    wrong = [a for a in attempts if a["answered"] and float(a["grade"]) < 1.0]
    return sum(not a["passed"] for a in wrong), len(wrong)


@cache
def live_market(path: Path = RECORDING) -> LiveMarket:
    raw = json.loads(path.read_text())
    names: dict[str, str] = raw["agents"]
    per: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    per_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    values: dict[str, float] = {}
    counts: dict[str, int] = defaultdict(int)
    for item in raw["evaluation"]:
        task_type = TASK_TYPE_OF_SKILL[item["skill"]]
        values[task_type] = float(item["value_usd"])
        counts[task_type] += 1
        for agent, attempt in item["attempts"].items():
            per[(names.get(agent, agent), task_type)].append(attempt)
            per_type[task_type].append(attempt)
    caught = {t: caught_share(a) for t, a in per_type.items()}
    pooled = sum(c for c, _ in caught.values()) / max(sum(w for _, w in caught.values()), 1)
    measured: dict[str, dict[str, Measured]] = defaultdict(dict)
    for (agent, task_type), attempts in per.items():
        measured[agent][task_type] = measure(attempts)
    total = sum(counts.values())
    return LiveMarket(
        agents=tuple(names[a] for a in names if names[a] in measured),
        measured={a: measured[a] for a in measured if a != LOCAL},
        local=measured[LOCAL],
        value_usd=values,
        mix={t: c / total for t, c in counts.items()},
        detection={t: (c / w if w else pooled) for t, (c, w) in caught.items()},
        source=f"{path.name}, recorded {raw.get('meta', {}).get('recordedAt', '?')}: {total} held-out items",
    )
