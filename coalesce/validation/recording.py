"""The recording: every agent of the market (each contractor and the client's own worker) once on every item of
the held-out evaluation set and of a sample of the gold bank, through the path real work takes; what each
answered, what the client's check said, what it was charged and how long it took, graded against the truth.

Strategies are then replayed on the recording (`coalesce.validation.replay`): the same answers, prices and
latencies for every strategy and seed, so that they differ only by their decisions.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from client_agent.gold import Expectation, grade
from client_agent.measuring import Measurement
from client_agent.models import SubtaskSpec
from client_agent.service import ClientService
from coalesce.workload import VALUE_USD

FORMAT = 1


@dataclass(frozen=True)
class Attempt:
    """One agent's recorded attempt at one item."""

    agent: str
    answered: bool  # an answer came back (no error, no timeout)
    passed: bool  # the client's check passed: the answer would be delivered
    checked: bool  # a check that a wrong answer would fail passed (evidence of quality)
    grade: float  # against the truth, in [0, 1]
    cost_usd: float  # what the client paid (contractor) or its measured internal cost (local)
    raw_price_usd: float  # the price the decision would weigh before calibration
    compatibility: float
    latency_s: float  # what the decision assumes
    seconds: float  # what it took

    def delivered_grade(self) -> float:
        """What the client gets from this attempt alone: the grade of an answer its check lets through."""
        return self.grade if self.passed else 0.0


@dataclass
class Item:
    id: str
    skill: str
    value_usd: float
    subtask: dict[str, Any]
    expect: dict[str, Any]  # what a right answer contains (`client_agent.gold.Expectation`)
    attempts: dict[str, Attempt] = field(default_factory=dict)


@dataclass
class Recording:
    agents: dict[str, str]  # id -> name
    evaluation: list[Item]
    gold: list[Item]
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = {
            "format": FORMAT,
            "meta": self.meta,
            "agents": self.agents,
            "evaluation": [asdict(i) for i in self.evaluation],
            "gold": [asdict(i) for i in self.gold],
        }
        path.write_text(json.dumps(raw) + "\n")

    @classmethod
    def load(cls, path: Path) -> Recording:
        raw = json.loads(path.read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"{path}: a recording of another format ({raw.get('format')}); record again")

        def items(rows: list[dict[str, Any]]) -> list[Item]:
            return [
                Item(
                    r["id"],
                    r["skill"],
                    r["value_usd"],
                    r["subtask"],
                    r["expect"],
                    {a: Attempt(**x) for a, x in r["attempts"].items()},
                )
                for r in rows
            ]

        return cls(raw["agents"], items(raw["evaluation"]), items(raw["gold"]), raw.get("meta", {}))

    def skills(self) -> list[str]:
        return sorted({i.skill for i in self.evaluation})

    def agents_for(self, skill: str) -> list[str]:
        """Every agent recorded on the skill's evaluation items (on all of them)."""
        items = [i for i in self.evaluation if i.skill == skill]
        return sorted(set.intersection(*(set(i.attempts) for i in items))) if items else []


def attempt(measurement: Measurement, expect: Expectation) -> Attempt:
    outcome = measurement.outcome
    verdict = outcome.verdict
    return Attempt(
        agent=measurement.agent,
        answered=verdict is not None,
        passed=outcome.ok,
        checked=bool(verdict and verdict.passed and verdict.graded),
        grade=round(grade(expect, outcome.artifacts), 4) if verdict is not None else 0.0,
        cost_usd=round(outcome.cost_usd, 9),
        raw_price_usd=round(measurement.raw_price_usd, 9),
        compatibility=round(measurement.compatibility, 6),
        latency_s=round(measurement.latency_s, 4),
        seconds=round(outcome.seconds, 4),
    )


async def record_items(
    service: ClientService,
    rows: list[dict[str, Any]],
    concurrency: int = 2,
    advance: Callable[[], None] = lambda: None,
) -> list[Item]:
    """Every able agent on every row (`{"id", "kind", "subtask", "expect"}`), `concurrency` rows at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(row: dict[str, Any]) -> Item:
        async with gate:
            skill, value = row["kind"], VALUE_USD[row["kind"]]
            spec = SubtaskSpec.model_validate({**row["subtask"], "value_usd": value})
            expect = Expectation.model_validate(row["expect"])
            measured = await service.measure(spec, value)
            advance()
        attempts = {m.agent: attempt(m, expect) for m in measured}
        return Item(row["id"], skill, value, row["subtask"], row["expect"], attempts)

    return list(await asyncio.gather(*(one(row) for row in rows)))
