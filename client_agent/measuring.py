"""Measuring the market: one subtask done by every agent able to do it (each contractor that matches it and the
client's own worker), each through the path real work takes (the same message, channel, escrow, price and
verification), without a decision and without learning from it. The validation's recording is made of these."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from client_agent.deciding import Decider, Deliberation
from client_agent.hiring import Hirer
from client_agent.local import LocalWork
from client_agent.models import SubtaskSpec, TaskSubmission
from client_agent.planner import CatalogueSkill
from client_agent.probing import PROBE_PREFIX, attempt_by
from client_agent.state import LOCAL, Outcome, SubtaskRun
from shared.a2a.models import new_id

MAX_BUSY_WAITS = 20


@dataclass(frozen=True)
class Measurement:
    """One agent's attempt at a subtask, with the price the client would have weighed it at."""

    agent: str
    outcome: Outcome
    raw_price_usd: float  # the quote plus expected usage (a contractor) or the internal cost estimate (local)
    compatibility: float  # the skill match (12) of the agent to the subtask (1 for the client's own worker)
    latency_s: float  # the latency the decision would have assumed


class Measurer:
    def __init__(self, decider: Decider, hirer: Hirer, local: LocalWork) -> None:
        self.decider = decider
        self.hirer = hirer
        self.local = local

    async def every_agent(
        self, spec: SubtaskSpec, value_usd: float, catalogue: list[CatalogueSkill]
    ) -> list[Measurement]:
        """Every able agent's attempt at `spec`, one after another (each a fresh run)."""
        run = SubtaskRun(f"{PROBE_PREFIX}{new_id()}", new_id(), spec)
        submission = TaskSubmission(description=spec.description[:1000], subtasks=[spec])
        deliberation = await self.decider.decide(run, submission, value_usd, set(), 1e9, catalogue)
        agents = list(deliberation.offers) + ([LOCAL] if self.local.can_do(spec.skill or "llm") else [])
        return [m for agent in agents if (m := await self.measure(agent, spec, deliberation)) is not None]

    async def measure(self, agent: str, spec: SubtaskSpec, deliberation: Deliberation) -> Measurement | None:
        """One agent's attempt (waiting while it is at capacity); None when it left the market."""
        for _ in range(MAX_BUSY_WAITS):
            run = SubtaskRun(f"{PROBE_PREFIX}{new_id()}", new_id(), spec)
            outcome = await attempt_by(agent, run, deliberation, self.hirer, self.local)
            if outcome is None or outcome.busy_s is None:
                break
            await asyncio.sleep(outcome.busy_s)
        if outcome is None:
            return None
        if agent == LOCAL:
            local = deliberation.problem.local
            return Measurement(agent, outcome, float(local.cost_usd), 1.0, float(local.latency_s))
        c = deliberation.problem.candidates
        column = c.ids.index(agent)
        return Measurement(
            agent,
            outcome,
            deliberation.raw_prices[agent],
            float(c.compatibility[0, column] if c.compatibility.ndim == 2 else c.compatibility[column]),
            deliberation.offers[agent].latency_s,
        )
