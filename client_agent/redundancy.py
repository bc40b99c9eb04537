"""Agreement: a share of the label and number subtasks also goes to one or two other agents (the client's own
worker may be one). Their answers estimate each agent's accuracy without any known answer (Dawid-Skene over the
skill's recent multi-answered items for labels, the median for numbers: `shared.economics.agreement`), and the
agreed answer is the one delivered."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import numpy as np

from client_agent.answers import NUMERIC_FIELDS, label_of, vector_of
from client_agent.deciding import Deliberation
from client_agent.hiring import Hirer
from client_agent.local import LocalWork
from client_agent.probing import baseline
from client_agent.progress import Progress
from client_agent.quality import Quality
from client_agent.state import LOCAL, EventKind, Outcome, SubtaskRun
from shared.economics.agreement import MISSING, dawid_skene, number_consensus

HISTORY = 500  # multi-answered items kept per skill for Dawid-Skene


@dataclass
class Answer:
    agent: str
    outcome: Outcome


class Redundancy:
    def __init__(self, quality: Quality, hirer: Hirer, local: LocalWork, progress: Progress, seed: int = 0) -> None:
        self.quality = quality
        self.hirer = hirer
        self.local = local
        self.progress = progress
        self.rng = np.random.default_rng(seed)
        self._history: dict[str, deque[dict[str, str]]] = {}

    def kind(self, run: SubtaskRun) -> str | None:
        """'labels' or 'numbers' when answers to this subtask can be compared; None otherwise."""
        if run.spec.verification.labels:
            return "labels"
        if run.spec.skill in NUMERIC_FIELDS:
            return "numbers"
        return None

    def others(self, run: SubtaskRun, first: str, deliberation: Deliberation) -> list[str]:
        """Up to `agreement_agents − 1` other agents for this item, or none when this item is not drawn."""
        config = self.quality.config
        if self.kind(run) is None or baseline(deliberation) or self.rng.random() >= config.agreement_rate:
            return []
        ranked = sorted(deliberation.offers, key=lambda cid: deliberation.offers[cid].price_usd)
        pool = [cid for cid in ranked if cid != first]
        if first != LOCAL and self.local.can_do(run.spec.skill or "llm"):
            pool.insert(0, LOCAL)
        return pool[: config.agreement_agents - 1]

    async def gather(
        self, run: SubtaskRun, attempt: int, first: Answer, others: list[str], deliberation: Deliberation, budget: float
    ) -> Outcome:
        """The others' answers, the consensus, each agent's grade; the agreed answer as the subtask's outcome."""
        skill = run.spec.skill or "llm"
        outcomes = await asyncio.gather(
            *(self._ask(run, attempt + 1 + i, agent, deliberation, budget) for i, agent in enumerate(others))
        )
        answers = [first] + [Answer(a, o) for a, o in zip(others, outcomes, strict=True) if o.ok]
        extra_cost = sum(o.cost_usd for o in outcomes)
        for i, (agent, outcome) in enumerate(zip(others, outcomes, strict=True)):
            self.progress.note_attempt(run, attempt + 1 + i, outcome)
            if outcome.busy_s is None and (agent == LOCAL or self.hirer.market.registry.get(agent) is not None):
                self.quality.learn(run, outcome)  # its checks say as much as the first answer's did
        self.quality.spend.agreement_usd += extra_cost
        self.quality.spend.agreements += 1
        if len(answers) < 2:
            return first.outcome
        chosen = self._labels(run, skill, answers) if self.kind(run) == "labels" else self._numbers(run, skill, answers)
        self.progress.publish(
            run, EventKind.AGREEMENT, agents=[a.agent for a in answers], delivered=chosen.agent, costUsd=extra_cost
        )
        delivered = chosen.outcome
        return Outcome(
            True,
            chosen.agent,
            f"agreed by {len(answers)} agents",
            delivered.artifacts,
            delivered.verdict,
            first.outcome.cost_usd + extra_cost,
            max(a.outcome.seconds for a in answers),
        )

    async def _ask(
        self, run: SubtaskRun, attempt: int, agent: str, deliberation: Deliberation, budget: float
    ) -> Outcome:
        if agent == LOCAL:
            return await self.local.run(run, attempt, deliberation.problem)
        contractor = self.hirer.market.registry.get(agent)
        if contractor is None:
            return Outcome(False, agent, "the contractor left the market")
        price, raw = deliberation.offers[agent].price_usd, deliberation.raw_prices[agent]
        return await self.hirer.hire(run, attempt, contractor, run.spec.skill, price, budget, raw)

    def _labels(self, run: SubtaskRun, skill: str, answers: list[Answer]) -> Answer:
        labels = run.spec.verification.labels or []
        said = {a.agent: label_of(a.outcome.artifacts, labels) for a in answers}
        item = {agent: label for agent, label in said.items() if label is not None}
        history = self._history.setdefault(skill, deque(maxlen=HISTORY))
        history.append(item)
        agents = sorted({agent for row in history for agent in row})
        matrix = np.full((len(history), len(agents)), MISSING)
        for i, row in enumerate(history):
            for agent, given in row.items():
                matrix[i, agents.index(agent)] = labels.index(given)
        known = [self.quality.competence(agent, skill) for agent in agents]
        strength = [min(sum(n for s, n in c.sources.items() if s != "agreement"), 50) for c in known]
        consensus = dawid_skene(matrix, len(labels), known_accuracy=np.array([c.quality for c in known]),
                                known_strength=np.array(strength, dtype=float))  # fmt: skip
        posterior = consensus.posterior[-1]
        for answer in answers:
            told = said[answer.agent]
            right = float(posterior[labels.index(told)]) if told is not None else 0.0
            self.quality.record(answer.agent, skill, right, "agreement", run, detail=f"said {told}")
        agreed = labels[int(posterior.argmax())]
        holders = [a for a in answers if said[a.agent] == agreed] or answers
        return max(holders, key=lambda a: self.quality.competence(a.agent, skill).quality)

    def _numbers(self, run: SubtaskRun, skill: str, answers: list[Answer]) -> Answer:
        vectors = [vector_of(skill, a.outcome.artifacts) for a in answers]
        usable = [(a, v) for a, v in zip(answers, vectors, strict=True) if v is not None]
        if len(usable) < 2 or len({len(v) for _, v in usable}) != 1:
            return answers[0]
        consensus = number_consensus(np.stack([v for _, v in usable]), rel_tol=run.spec.verification.tolerance)
        if not consensus.decided:
            return answers[0]
        for (answer, _), agrees in zip(usable, consensus.agrees, strict=True):
            self.quality.record(answer.agent, skill, float(agrees), "agreement", run)
        return next(a for (a, _), agrees in zip(usable, consensus.agrees, strict=True) if agrees)
