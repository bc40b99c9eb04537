"""Deciding one attempt at a subtask: its candidates from skill matching (12) over the market, each priced by
its live quote (eq. 7) plus the expected usage charge and calibrated (10); the local option priced by the
internal cost (1)-(5); the engine of `shared.economics.decision` chooses with the configured strategy."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from client_agent.local import LocalWork
from client_agent.market import Market, load_share
from client_agent.models import SubtaskSpec, TaskSubmission
from client_agent.planner import CatalogueSkill
from client_agent.registry import Contractor
from client_agent.state import LOCAL, SubtaskRun
from client_agent.storage import Store
from shared.economics.cost_model import CostCalibrator, HardwareProfile, Link, Offer, TaskProfile, internal_cost
from shared.economics.decision.engine import DecisionEngine
from shared.economics.decision.problem import CandidateOffer, Decision, DecisionConfig, LocalOption, Problem
from shared.economics.decision.strategies import make_strategy
from shared.economics.decision.weights import MarketSignals, WeightLearner
from shared.economics.reputation import SENSITIVITY_WEIGHT, ReputationBook, security_risk
from shared.economics.skills import SkillRequirement

LLM_PARAMETERS = 135e6  # the embedded model's size, for the local FLOP estimate


def estimate_task_profile(spec: SubtaskSpec, value_usd: float, deadline_s: float | None) -> TaskProfile:
    """A rough FLOP count per skill, for the local cost estimate (calibrated later by measured costs)."""
    data = spec.input_data or {}
    text = (spec.input_text or "") + spec.description
    if spec.resources.flops:
        flops = spec.resources.flops
    elif spec.skill == "risk-assessment":
        flops = 20.0 * float(data.get("simulations", 100_000)) * float(data.get("horizon_days", 1))
    elif spec.skill == "portfolio-optimisation":
        flops = 2000.0 * len(data.get("expected_returns", [0])) ** 3 + 1e6
    elif spec.skill == "similarity-search":
        corpus = data.get("corpus") or [[0.0]]
        flops = 4.0 * len(corpus) * len(corpus[0]) + 1e5
    else:  # an LLM: 2 FLOPs per parameter per token, prompt and answer
        flops = 2.0 * LLM_PARAMETERS * (len(text) / 4 + 256)
    return TaskProfile(
        flops=flops,
        value_usd=value_usd,
        deadline_s=deadline_s,
        input_bytes=len(text) + 8 * sum(len(str(v)) for v in data.values()),
        output_bytes=4096,
    )


@dataclass
class Deliberation:
    """A decision with what it was made from: the problem, the offers by contractor id, and how many
    candidates did not answer for a quote (too busy: worth waiting for rather than giving up)."""

    decision: Decision
    problem: Problem
    offers: dict[str, Offer] = field(default_factory=dict)
    raw_prices: dict[str, float] = field(default_factory=dict)  # quote + expected usage, before calibration
    unanswered: int = 0


@dataclass(frozen=True)
class DecidingConfig:
    strategy: str
    decision: DecisionConfig
    hardware: HardwareProfile
    seed: int
    reserve_factor: float
    verification_usd: float
    breach_probability: float


SAVE_EVERY_S = 1.0  # the learned state is saved at most this often while tasks finish


class Decider:
    """Decides subtasks; keeps the learned state every strategy shares (reputation, hire record, weights,
    calibration) and saves it to the store."""

    def __init__(
        self,
        config: DecidingConfig,
        market: Market,
        local: LocalWork,
        store: Store,
        reputation: ReputationBook,
        calibrator: CostCalibrator,
    ) -> None:
        self.config = config
        self.market = market
        self.local = local
        self.store = store
        self.calibrator = calibrator
        self.reputation = reputation
        self.learner = WeightLearner(config.decision.learning_rate)
        self.hires: dict[str, int] = {}
        self.good_hires: dict[str, int] = {}
        self._engines: dict[str, DecisionEngine] = {}
        make_strategy(config.strategy)  # an unknown strategy fails at start, not on the first task
        self.extras: Callable[[], dict[str, Any]] = dict  # more learned state to keep (the service's)
        self._save_due: asyncio.TimerHandle | None = None
        self.loaded = self.load()

    def load(self) -> dict[str, Any]:
        """The learned state from the store (returned, for what other parts keep in it)."""
        state = self.store.load_state("decision") or {}
        self.reputation.restore(state.get("reputation", {}))
        self.hires.update(state.get("hires", {}))
        self.good_hires.update(state.get("goodHires", {}))
        self.calibrator.factors.update(state.get("calibration", {}))
        if "weights" in state:
            self.learner.weights[:] = state["weights"]
        return state

    def save_soon(self) -> None:
        """Save within `SAVE_EVERY_S`: the tasks that finish meanwhile are written in one save, not one each (a
        kill -9 loses at most that much learning; `save` at close writes it all)."""
        if self._save_due is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save()
            return
        self._save_due = loop.call_later(SAVE_EVERY_S, self.save)

    def save(self) -> None:
        if self._save_due is not None:
            self._save_due.cancel()
            self._save_due = None
        self.store.save_state(
            "decision",
            {
                "reputation": self.reputation.snapshot(),
                "hires": self.hires,
                "goodHires": self.good_hires,
                "calibration": self.calibrator.factors,
                "weights": self.learner.weights.tolist(),
                **self.extras(),
            },
        )

    def engine(self, strategy: str | None) -> DecisionEngine:
        """One engine per strategy, all sharing the track record, the learned weights and the calibration."""
        name = strategy or self.config.strategy
        if name not in self._engines:
            engine = DecisionEngine(make_strategy(name), self.config.decision, self.config.seed, self.reputation)
            engine.learner, engine.hires, engine.good_hires = self.learner, self.hires, self.good_hires
            self._engines[name] = engine
        return self._engines[name]

    def observe(self, strategy: str | None, decision: Decision, ok: bool, cost_usd: float) -> None:
        """The hire record behind confidence (18) and the learned weights (13); competence is learnt from quality
        signals (`client_agent.quality`), not from whether an answer was well formed."""
        self.engine(strategy).observe(decision, ok, cost_usd, time.time(), record_quality=False)

    async def decide(
        self,
        run: SubtaskRun,
        submission: TaskSubmission,
        value: float,
        tried: set[str],
        budget: float,
        catalogue: list[CatalogueSkill],
    ) -> Deliberation:
        spec = run.spec
        now = time.time()
        profile = estimate_task_profile(spec, value, submission.deadline_s)
        local = self.local_option(spec, profile, now)
        sensitivity = spec.privacy or submission.sensitivity
        eligible = self._eligible(run, catalogue, tried, sensitivity, now)
        quotes = await self.market.quotes([c for _, _, c in eligible])
        candidate_offers, offers, raw, loads, unanswered = [], {}, {}, [], 0
        for (skill_id, compatibility, contractor), quote in zip(eligible, quotes, strict=True):
            if quote is None:  # not answering: not a candidate this time
                unanswered += 1
                continue
            raw[contractor.id] = quote[0] + self.expected_usage(contractor, profile)
            offer = self.offer(contractor, raw[contractor.id], profile, sensitivity)
            if offer.price_usd * self.config.reserve_factor > budget:
                continue
            offers[contractor.id] = offer
            loads.append(load_share(quote[1]))
            candidate_offers.append(CandidateOffer(contractor.id, skill_id, compatibility, offer))
        engine = self.engine(submission.strategy)
        recent = sum(self.hires.values())
        signals = MarketSignals(
            market_pressure=sum(loads) / len(loads) if loads else 0.25,
            failure_rate=1 - sum(self.good_hires.values()) / recent if recent else 0.25,
            task_urgency=1.0 if (submission.deadline_s or math.inf) <= 60 else 0.5 if submission.deadline_s else 0.25,
            risk_level=SENSITIVITY_WEIGHT[sensitivity],
        )
        problem = Problem(
            value_usd=value,
            value_at_stake=value,
            local=local,
            candidates=engine.candidates(candidate_offers, profile, now),
            signals=signals,
            deadline_s=submission.deadline_s,
            urgency=signals.task_urgency,
        )
        return Deliberation(engine.decide(problem), problem, offers, raw, unanswered)

    def _eligible(
        self, run: SubtaskRun, catalogue: list[CatalogueSkill], tried: set[str], sensitivity: str, now: float
    ) -> list[tuple[str, float, Contractor]]:
        """(skill id, compatibility, contractor) of every contractor that matches the subtask, was not tried
        already and may take data of this sensitivity; the others' refusals go into the subtask's state."""
        spec = run.spec
        registry = self.market.registry
        terms = set(spec.required_skills) | ({f"skill:{spec.skill}"} if spec.skill else set())
        named = next((c for c in catalogue if c.id == spec.skill), None)
        text = f"{named.name}. {spec.description}" if named else spec.description  # in the market's words
        requirement = SkillRequirement(frozenset(terms), text[:1000])
        performance = [self.reputation.reliability(c, s, now) for c, s in registry.index.rows()]
        matches = registry.index.match(requirement, np.array(performance))
        rows = [r for r in matches.best_per_contractor() if matches.contractor_ids[r] not in tried]
        if spec.skill:
            rows = [r for r in rows if matches.skill_ids[r] == spec.skill]
        eligible = []
        for r in rows:
            contractor = registry.get(matches.contractor_ids[r])
            refusal = self.market.refusal(contractor, sensitivity) if contractor else "it left the market"
            if refusal is not None:
                run.state.excluded[matches.contractor_ids[r]] = refusal
            elif contractor is not None:
                eligible.append((matches.skill_ids[r], float(matches.compatibility[r]), contractor))
        return eligible

    @staticmethod
    def expected_usage(contractor: Contractor, profile: TaskProfile) -> float:
        """The usage charge expected on top of the quote, from the card's prices: per token, and per compute
        second for the card's typical latency."""
        block = contractor.card.coalesce
        if block is None:
            return 0.0
        tokens = profile.flops / (2.0 * LLM_PARAMETERS)
        per_token = tokens / 2000.0 * (block.price.per_1k_input_tokens_usd + block.price.per_1k_output_tokens_usd)
        return per_token + block.price.per_compute_second_usd * block.typical_latency_s

    def offer(self, contractor: Contractor, raw_price: float, profile: TaskProfile, sensitivity: str) -> Offer:
        """The contractor's terms: its price (quote plus expected usage) calibrated by what it charged before."""
        card = contractor.card
        latency = card.coalesce.typical_latency_s if card.coalesce else 30.0
        channel = contractor.channel_kind
        return Offer(
            price_usd=self.calibrator.estimate(contractor.id, raw_price),
            latency_s=latency,
            p_security=security_risk([self.config.breach_probability] * 2, sensitivity, channel),
            verification_usd=self.config.verification_usd,
            link=Link(bandwidth_bytes_per_s=12.5e6),
        )

    def local_option(self, spec: SubtaskSpec, profile: TaskProfile, now: float) -> LocalOption:
        skill = spec.skill or "llm"
        cost = internal_cost(profile, self.config.hardware, self.local.queue.values())
        a, b = self.reputation.posterior(LOCAL, skill, now)  # learnt like any contractor's, from the same prior
        return LocalOption(
            cost_usd=self.calibrator.estimate(f"local:{skill}", cost.total),
            latency_s=cost.exec_seconds,
            p_failure=b / (a + b),
            available=self.local.can_do(skill),
            quality_a=a,
            quality_b=b,
        )

    def competence(self, agent: str, skills: list[str], now: float) -> list[dict[str, Any]]:
        """Per skill: the quality estimate, its 90 % interval and its evidence."""
        return [{"skill": skill, **self.reputation.competence(agent, skill, now).wire()} for skill in skills]

    def local_view(self) -> dict[str, Any]:
        """The client's own worker, as the market view shows an agent."""
        now, own = time.time(), sorted(self.local.workers)
        return {
            "id": LOCAL,
            "name": "the client's own worker",
            "skills": own,
            "competence": self.competence(LOCAL, own, now),
            "reliability": round(self.reputation.reliability(LOCAL, None, now), 6),
        }

    def market_view(self, contractors: list[Contractor], quotes: list[Any]) -> list[dict[str, Any]]:
        now = time.time()
        return [
            {
                "id": c.id,
                "name": c.card.name,
                "url": c.endpoint.url,
                "a2aVersion": c.endpoint.dialect.value,
                "skills": [s.id for s in c.card.skills],
                "competence": self.competence(c.id, [s.id for s in c.card.skills], now),
                "basePriceUsd": c.card.coalesce.price.base_usd if c.card.coalesce else c.operator_price_usd,
                "quoteUsd": quote[0] if quote else None,
                "load": quote[1] if quote else None,
                "reliability": round(self.reputation.reliability(c.id, None, now), 6),
                "signingKey": c.signing_key,
                "endToEnd": c.channel is not None,
                "provenSkills": sorted(c.proven_skills),
                "certified": {skill: {"score": m.score, "items": m.items} for skill, m in c.certified.items()},
                "hires": self.hires.get(c.id, 0),
                "goodHires": self.good_hires.get(c.id, 0),
            }
            for c, quote in zip(contractors, quotes, strict=True)
        ]
