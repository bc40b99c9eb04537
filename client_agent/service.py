"""The client agent as one object: it assembles the parts (market, decider, hirer, local work, runner, ledger,
events) and answers the API's calls. A plain asyncio object; `client_agent.api` is its HTTP shell.

Side effects go through seams: `transport` is the httpx transport every outbound call uses (contractor cards,
quotes, A2A), the store is passed in."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from client_agent.deciding import Decider, DecidingConfig
from client_agent.errors import Conflict, Invalid, NotFound, Overloaded
from client_agent.events import EventBus
from client_agent.gold import GoldItem, ProbeBank
from client_agent.hiring import Hirer
from client_agent.ledger import Ledger
from client_agent.local import LocalWork
from client_agent.market import Market
from client_agent.measuring import Measurement, Measurer
from client_agent.metrics import ClientMetrics
from client_agent.models import Feedback, InputAnswer, SubtaskSpec, TaskSubmission
from client_agent.planner import CatalogueSkill, Planner
from client_agent.probing import Prober
from client_agent.progress import Progress, SilentProgress
from client_agent.quality import Quality, QualityConfig, Spend
from client_agent.redundancy import Redundancy
from client_agent.registry import Contractor, Registry
from client_agent.runner import RunnerConfig, TaskRunner
from client_agent.state import LOCAL, TERMINAL, EventKind, Status, SubtaskRun, SubtaskState
from client_agent.storage import Store
from client_agent.verification import Verifier
from shared.a2a.cards import MAX_REDIRECTS, FetchPolicy
from shared.a2a.models import new_id
from shared.economics.cost_model import CostCalibrator, HardwareProfile
from shared.economics.decision.problem import DecisionConfig
from shared.economics.decision.strategies import make_strategy
from shared.economics.decision.topsis import DecisionError
from shared.economics.reputation import ReputationBook
from shared.economics.skills import Embedder, SkillIndex
from shared.security.net_policy import checked_transport, resolver
from shared.workers.base import Worker


@dataclass
class ClientConfig:
    strategy: str = "thompson"
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    hardware: HardwareProfile = field(
        default_factory=lambda: HardwareProfile(
            peak_flops=1e11, memory_bytes=24e9, tdp_watts=65.0, hw_cost_per_hour=0.10, utilisation=0.3
        )
    )
    default_value_usd: float = 1.0  # what a subtask is worth when the submission does not say
    reserve_factor: float = 2.0  # escrow = quote × this (usage is charged on top of the quote)
    verification_usd: float = 0.0005  # what checking one result costs the client
    breach_probability: float = 0.01  # P_breach of an unknown contractor, per path
    quality: QualityConfig = field(default_factory=QualityConfig)  # probes, agreement and their budget
    max_attempts: int = 3
    hire_timeout_s: float = 120.0
    local_timeout_s: float = 300.0
    input_timeout_s: float = 600.0
    quote_timeout_s: float = 2.0
    quote_reuse_s: float = 0.5  # a quote that ended a hire stands for a live one this long (0: always ask)
    max_running_tasks: int = 32
    max_pending_tasks: int = 1000
    max_subscribers: int = 256
    refresh_interval_s: float = 60.0
    seed: int = 0
    # security: see README "Secure exchange"
    allow_private_contractors: bool = False  # True for a local market: cards on loopback / private networks
    nameserver: str | None = None  # "host:port": names looked up at this name server, not by the system
    trusted_attestors: frozenset[str] = frozenset()  # thumbprints of attestor keys whose certificates count
    unproven_skill_weight: float = 0.5
    contractor_tokens: dict[str, str] = field(default_factory=dict)  # contractor card URL -> its API key

    def deciding(self) -> DecidingConfig:
        return DecidingConfig(
            strategy=self.strategy,
            decision=self.decision,
            hardware=self.hardware,
            seed=self.seed,
            reserve_factor=self.reserve_factor,
            verification_usd=self.verification_usd,
            breach_probability=self.breach_probability,
        )


class ClientService:
    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        local_workers: dict[str, Worker],
        config: ClientConfig | None = None,
        planner_llm: Any = None,
        judge: Any = None,
        initial_contractors: list[str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        gold: list[GoldItem] | None = None,
    ) -> None:
        """`judge`: a model stronger than the workers it judges, or None (the embedded model is no judge).
        `gold`: the known-answer items the client probes agents with (none: no probes)."""
        self.config = config = config or ClientConfig()
        self.store = store
        self.local_workers = local_workers
        self.initial_contractors = list(initial_contractors or [])
        resolve = resolver(config.nameserver)
        self.http = httpx.AsyncClient(
            timeout=config.hire_timeout_s,
            max_redirects=MAX_REDIRECTS,
            # cards and contractors: connections go to the addresses checked for them (no DNS rebinding)
            transport=transport
            or checked_transport(config.allow_private_contractors, resolve=resolve, max_connections=200),
        )
        self.reputation = ReputationBook()
        self.registry = Registry(
            store,
            SkillIndex(embedder),
            self.http,
            FetchPolicy(allow_private=config.allow_private_contractors, resolve=resolve),
            config.trusted_attestors,
            config.unproven_skill_weight,
            reputation=self.reputation,
        )
        self.metrics = ClientMetrics()
        self.ledger = Ledger(store, observe=lambda kind, amount: self.metrics.money_usd.labels(kind).inc(amount))
        self.events = EventBus(store, config.max_subscribers)
        self.market = Market(
            self.registry, self.http, config.contractor_tokens, config.quote_timeout_s, config.quote_reuse_s
        )
        progress = Progress(store, self.events, config.input_timeout_s)
        verifier = Verifier(judge)
        calibrator = CostCalibrator(config.decision.calibration_lambda)
        self.quality = Quality(self.reputation, config.quality)
        self.gold = ProbeBank(gold, config.seed)
        self.local = LocalWork(
            local_workers,
            config.hardware,
            calibrator,
            verifier,
            progress,
            self.metrics,
            config.local_timeout_s,
        )
        self.decider = Decider(config.deciding(), self.market, self.local, store, self.reputation, calibrator)
        self.quality.spend = Spend.restore(self.decider.loaded.get("spend") or {})
        self.decider.extras = lambda: {"spend": self.quality.spend.wire()}
        hirer = Hirer(
            self.market, self.ledger, verifier, calibrator, progress, config.reserve_factor, config.hire_timeout_s
        )
        silent = SilentProgress(store, self.events, config.input_timeout_s)
        self.prober = Prober(self.gold, self.quality, hirer, self.local, progress, silent, config.seed)
        redundancy = Redundancy(self.quality, hirer, self.local, progress, config.seed)
        self.runner = TaskRunner(
            RunnerConfig(config.max_attempts, config.max_running_tasks, config.default_value_usd),
            store,
            progress,
            Planner(embedder, planner_llm),
            self.decider,
            hirer,
            self.local,
            self.ledger,
            self.metrics,
            lambda: self.catalogue() + self.local_catalogue(),
            self.quality,
            self.prober,
            redundancy,
        )
        self.measurer = Measurer(self.decider, hirer, self.local)
        self._refresher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.runner.recover()
        self._refresher = asyncio.create_task(self._keep_registry())

    async def _keep_registry(self) -> None:
        await self.market.register_at_start(self.initial_contractors)
        await self.registry.refresh_forever(self.config.refresh_interval_s)

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        await self.runner.close()
        self.decider.save()
        await self.http.aclose()
        for worker in {id(w): w for w in self.local_workers.values()}.values():
            await worker.close()

    # ------------------------------------------------------------ contractors and the market

    async def measure(self, spec: SubtaskSpec, value_usd: float) -> list[Measurement]:
        """`spec` done by every able agent, each through the path real work takes (the validation's recording)."""
        return await self.measurer.every_agent(spec, value_usd, self.catalogue() + self.local_catalogue())

    async def register(self, card_url: str, price_usd: float | None = None) -> tuple[Contractor, bool]:
        return await self.registry.register(card_url, price_usd)

    def catalogue(self) -> list[CatalogueSkill]:
        seen: dict[str, CatalogueSkill] = {}
        for contractor in self.registry.active():
            for skill in contractor.card.skills:
                seen.setdefault(skill.id, CatalogueSkill(skill.id, skill.name, skill.description))
        return list(seen.values())

    def local_catalogue(self) -> list[CatalogueSkill]:
        known = {s.id for s in self.catalogue()}
        return [
            CatalogueSkill(skill, skill.replace("-", " "), skill.replace("-", " "))
            for skill in self.local_workers
            if skill not in known
        ]

    async def market_view(self) -> list[dict[str, Any]]:
        contractors = self.registry.active()
        return self.decider.market_view(contractors, await self.market.quotes(contractors))

    # ------------------------------------------------------------ tasks

    def submit(self, submission: TaskSubmission) -> tuple[str, str, bool]:
        """(task id, status, created). A repeated idempotency key returns the first task."""
        if submission.idempotency_key:
            existing = self.store.task_by_key(submission.idempotency_key)
            if existing:
                return existing["id"], existing["status"], False
        if submission.strategy is not None:
            try:
                make_strategy(submission.strategy)
            except DecisionError as error:
                raise Invalid(str(error)) from None
        active = self.runner.active()
        if active >= self.config.max_pending_tasks:
            raise Overloaded(f"{active} tasks in progress; try again later")
        task_id = new_id()
        try:
            self.store.create_task(task_id, submission.model_dump(mode="json"), submission.idempotency_key)
        except Exception as error:  # a concurrent submit with the same key won the insert
            if submission.idempotency_key and (existing := self.store.task_by_key(submission.idempotency_key)):
                return existing["id"], existing["status"], False
            raise Conflict(f"could not create the task: {type(error).__name__}") from None
        self.events.publish(task_id, EventKind.SUBMITTED, {"description": submission.description[:500]})
        self.runner.start(task_id, submission)
        return task_id, Status.SUBMITTED.value, True

    def task(self, task_id: str) -> dict[str, Any]:
        stored = self.store.task(task_id)
        if stored is None:
            raise NotFound(f"task {task_id!r} not found")
        return stored

    def require_task(self, task_id: str) -> None:
        """NotFound unless the task exists (one that runs is known without asking the store)."""
        if task_id not in self.runner.runners and self.store.task_status(task_id) is None:
            raise NotFound(f"task {task_id!r} not found")

    def is_done(self, task_id: str) -> bool:
        runner = self.runner.runners.get(task_id)
        if runner is not None:
            return runner.done()
        status = self.store.task_status(task_id)
        return status is None or status in TERMINAL

    async def cancel(self, task_id: str) -> str:
        stored = self.task(task_id)
        if stored["status"] in TERMINAL:
            raise Conflict(f"task {task_id!r} is {stored['status']} and cannot be canceled")
        runner = self.runner.runners.get(task_id)
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        return str(self.task(task_id)["status"])

    def feedback(self, task_id: str, feedback: Feedback) -> dict[str, Any]:
        """A grade for a delivered subtask, from its user: into the competence of the agent that delivered it."""
        stored = self.task(task_id)
        subtasks = stored["subtasks"]
        if feedback.subtask_id is not None:
            subtasks = [s for s in subtasks if s["id"] == feedback.subtask_id]
            if not subtasks:
                raise NotFound(f"task {task_id!r} has no subtask {feedback.subtask_id!r}")
        elif len(subtasks) != 1:
            raise Invalid(f"task {task_id!r} has {len(subtasks)} subtasks: say which with subtask_id")
        sub = subtasks[0]
        if sub["status"] != Status.COMPLETED:
            raise Conflict(f"subtask {sub['id']!r} is {sub['status']}: only a delivered subtask takes feedback")
        state = SubtaskState.model_validate(sub["state"] or {})
        if state.feedback is not None:
            raise Conflict(f"subtask {sub['id']!r} already has feedback")
        grade = feedback.grade if feedback.grade is not None else float(bool(feedback.correct))
        agent, skill = state.where or LOCAL, SubtaskSpec.model_validate(sub["spec"]).skill or "llm"
        run = SubtaskRun(sub["id"], task_id, SubtaskSpec.model_validate(sub["spec"]), state)
        self.quality.record(agent, skill, grade, "feedback", run, detail=feedback.note or "")
        state.feedback = {"grade": grade, "note": feedback.note, "agent": agent}
        self.store.set_subtask(sub["id"], sub["status"], state.wire())
        self.decider.save()
        self.events.publish(task_id, EventKind.FEEDBACK, {"subtask": sub["id"], "agent": agent, "grade": grade})
        competence = self.quality.competence(agent, skill)
        return {"subtask": sub["id"], "agent": agent, "skill": skill, "grade": grade, **competence.wire()}

    def add_gold(self, items: list[GoldItem]) -> dict[str, Any]:
        total = self.gold.add(items)
        return {"added": len(items), "total": total, "bySkill": self.gold.counts()}

    def answer(self, task_id: str, answer: InputAnswer) -> str:
        self.task(task_id)
        waiting = self.runner.waiting_for_input(task_id)
        if answer.subtask_id is not None:
            waiting = [run for run in waiting if run.id == answer.subtask_id]
        if not waiting:
            raise Conflict(
                "no subtask of this task is waiting for input"
                + (f" with id {answer.subtask_id!r}" if answer.subtask_id else "")
            )
        if len(waiting) > 1:
            raise Invalid("several subtasks wait for input: say which with subtask_id")
        try:
            waiting[0].answers.put_nowait(answer)
        except asyncio.QueueFull:
            raise Overloaded("answers are already queued for this subtask") from None
        return waiting[0].id
