"""Gold probes in the client's traffic: beside a real subtask, now and then, the same skill's known-answer item
goes to one of the agents the decision weighed (a contractor, or the client's own worker), through the same path
as real work (the same message form, the same channel, paid the same way), and its answer is graded exactly.

Probes go where they change decisions: to the agent the book is least sure of, at a rate that falls as its
evidence grows, within a budget (a share of what the client spends, plus a small floor)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

import numpy as np

from client_agent.deciding import Deliberation
from client_agent.gold import Expectation, ProbeBank, grade
from client_agent.hiring import Hirer
from client_agent.local import LocalWork
from client_agent.progress import Progress
from client_agent.quality import Quality
from client_agent.state import LOCAL, EventKind, Outcome, SubtaskRun
from shared.a2a.models import new_id
from shared.economics.decision.strategies import LocalOnly

log = logging.getLogger(__name__)

UNIFORM_DEVIATION = math.sqrt(1 / 12)  # the standard deviation of Beta(1, 1): knowing nothing
PROBE_PREFIX = "probe-"  # a probe's ledger entries name it so (its run is no stored subtask)


async def attempt_by(
    agent: str, run: SubtaskRun, deliberation: Deliberation, hirer: Hirer, local: LocalWork
) -> Outcome | None:
    """`agent`'s answer to `run` (a contractor among the deliberation's offers, or the client's own worker),
    through the same path as real work, at the offer's price (None: the contractor left the market)."""
    if agent == LOCAL:
        return await local.run(run, 1, deliberation.problem)
    contractor = hirer.market.registry.get(agent)
    if contractor is None:
        return None
    price, raw = deliberation.offers[agent].price_usd, deliberation.raw_prices[agent]
    return await hirer.hire(run, 1, contractor, run.spec.skill, price, price * hirer.reserve_factor, raw)


def baseline(deliberation: Deliberation) -> bool:
    """The all-local baseline hires no one, not even to learn."""
    return deliberation.decision.strategy == LocalOnly.name


class Prober:
    def __init__(
        self,
        bank: ProbeBank,
        quality: Quality,
        hirer: Hirer,
        local: LocalWork,
        progress: Progress,
        silent: Progress,
        seed: int = 0,
    ) -> None:
        self.bank = bank
        self.quality = quality
        self.config = quality.config
        self.hirer = hirer.with_progress(silent)
        self.local = local.with_progress(silent)
        self.progress = progress  # the real subtask's, to record the probe in it
        self.rng = np.random.default_rng(seed)
        self._flight: set[asyncio.Task[None]] = set()
        self._committed = 0.0  # what the probes in flight may cost

    def rate(self, deviation: float) -> float:
        """The chance of probing an agent whose quality posterior has this deviation: high while the book knows
        little of it, low once it is sure."""
        unsure = min(deviation / UNIFORM_DEVIATION, 1.0)
        return self.config.probe_rate_min + (self.config.probe_rate_max - self.config.probe_rate_min) * unsure

    def maybe(self, run: SubtaskRun, deliberation: Deliberation) -> None:
        """Perhaps start probes beside `run` (in the background; their results land in `run`'s record): each agent
        the decision weighed, the least known first, at its rate, at most `probes_per_subtask`, within budget."""
        skill = run.spec.skill
        if not self.config.probes or skill is None or not self.bank.has(skill) or baseline(deliberation):
            return
        agents = {cid: offer.price_usd for cid, offer in deliberation.offers.items()}
        if self.local.can_do(skill):
            agents[LOCAL] = float(deliberation.problem.local.cost_usd)
        deviation = {agent: self.quality.deviation(agent, skill) for agent in agents}
        order = sorted(agents, key=lambda a: (-deviation[a], self.rng.random()))
        started = 0
        for agent in order:
            if started >= self.config.probes_per_subtask or len(self._flight) >= self.config.max_probes_in_flight:
                return
            if self.rng.random() >= self.rate(deviation[agent]):
                continue
            cost = agents[agent] * (1.0 if agent == LOCAL else self.hirer.reserve_factor)
            item = self.bank.next(skill, agent) if cost <= self.quality.probe_allowance() - self._committed else None
            if item is None:
                continue
            probe = SubtaskRun(f"{PROBE_PREFIX}{new_id()}", new_id(), item.subtask.model_copy(update={"skill": skill}))
            self._committed += cost
            task = asyncio.create_task(self._probe(run, probe, agent, item.id, item.expect, deliberation, cost))
            self._flight.add(task)
            task.add_done_callback(self._flight.discard)
            started += 1

    async def _probe(
        self,
        run: SubtaskRun,
        probe: SubtaskRun,
        agent: str,
        item_id: str,
        expect: Expectation,
        deliberation: Deliberation,
        committed: float,
    ) -> None:
        try:
            outcome = await self._answer(probe, agent, deliberation)
        finally:
            self._committed -= committed
        if outcome is None:
            return
        skill = probe.spec.skill or ""
        if outcome.busy_s is not None:
            return  # full, not wrong: no evidence
        score = grade(expect, outcome.artifacts) if outcome.ok else 0.0
        self.quality.spend.probe_usd += outcome.cost_usd
        self.quality.spend.probes += 1
        self.quality.record(agent, skill, score, "probe", run, outcome.cost_usd, f"gold item {item_id}")
        self.progress.save(run)
        self.progress.publish(run, EventKind.PROBE, agent=agent, grade=round(score, 4), costUsd=outcome.cost_usd)
        log.info("probe of %s on %s: grade %.2f, $%.6f", agent, skill, score, outcome.cost_usd)

    async def _answer(self, probe: SubtaskRun, agent: str, deliberation: Deliberation) -> Outcome | None:
        return await attempt_by(agent, probe, deliberation, self.hirer, self.local)

    async def close(self) -> None:
        for task in list(self._flight):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._flight, return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the probes in flight (a test, a clean stop)."""
        await asyncio.gather(*list(self._flight), return_exceptions=True)
